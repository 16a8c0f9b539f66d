"""About: the method, the metrics and the paper, in short."""

import streamlit as st

from ui.nav import page_setup

page_setup("About")

st.title("About this explorer")
st.markdown(r"""
This app makes the method of B. L. Badger, **“Depth and Representation in Vision Models”**
(arXiv [2211.06496](https://arxiv.org/abs/2211.06496), 2022) interactive: how much of an image can be
recovered from a layer of a vision model, and why deep layers lose it.

### The method: layer autoencoding
1. Take an image $a$ (RGB in $[0, 1]$) and a classifier.
2. Pick a layer $l$. The **encoder** is the model's forward pass up to $l$: $y = O_l(a)$.
3. The **decoder** is gradient descent on an input: start from random noise $a_0$ (one start per
   **seed**) and change only the input until its embedding matches, $O_l(a_g) \approx y$. The model's
   weights never change. A small blur after each step keeps the image smooth.
4. The result $a_g$ is the layer's **reconstruction**. If several seeds all match the embedding but
   look different, the layer cannot tell those images apart: its representation is **non-unique**.

Two presets: **default** (Adam on the pixels, L1 loss divided by the target's size, image kept in
$[0, 1]$) converges on every model and checkpoint; **paper** reproduces the paper's plain gradient
steps, its L1 loss scale and its blur schedule (σ from 2.4 down to 0.4), which can diverge on
trained networks.

### What the numbers mean
| number | definition | reading |
| --- | --- | --- |
| $m_g$ | $\lVert O_l(a_g) - O_l(a)\rVert_2$ | how well the reconstruction matches the embedding |
| $m_i$ | $\lVert a_g - a\rVert_2$ | how close the reconstruction is to the image |
| $a'$ | $a + \mathcal N(0, 1/25)$ | a barely visible change of the image |
| $m_r$ | $\lVert O_l(a') - O_l(a)\rVert_2$ | how far a near-copy lands in the layer: the reference for $m_g$ |
| $\lVert a' - a\rVert_2$ | | the near-copy's pixel distance: the reference for $m_i$ |
| SSIM, PSNR | scikit-image | perceptual and pixel similarity to the original |
| seed spread | mean pairwise $\lVert a_g^{(i)} - a_g^{(j)}\rVert_2$ | how much the seeds disagree |
| **clarity** | $1 - m_i / m_i(\text{blurred start})$, clipped to $[0, 1]$ | 1 = the image itself, 0 = no better than where the run began |

**Not converged or not unique?** When $m_g \le m_r$ the optimiser matched the embedding as well as a
near-copy of the image does. If $m_i$ is then still far above $\lVert a' - a\rVert_2$, the layer
really cannot distinguish the reconstruction from the image: non-uniqueness, not a failing optimiser.
If $m_g > m_r$, the run has not converged: raise the iterations.

### What you can see here
- Before training, the deeper the layer, the less accurate its reconstruction (**Clarity curve**).
- The first convolution reconstructs almost exactly; pooling and strided layers lose exactness.
- Deep layers: $m_g$ reaches $m_r$ while $m_i$ stays large and seeds disagree (**Non-uniqueness**).
- Training makes early layers clearer, not late ones: these turn into abstract images.

### Pages
- **Invert**: one layer, several seeds, live; the numbers above for each seed; predictions of trained
  classifiers; PNG and JSON downloads. The URL holds the settings, so a link reproduces the view.
- **Clarity curve**: clarity (or SSIM, PSNR, $m_i$, $m_g/m_r$) against depth for each checkpoint, with
  a gallery like the paper's figure.
- **Non-uniqueness**: $m_g$ and $m_i$ per seed against the step, and the distances between seeds.

Finished runs are cached on disk by their full settings and a hash of the image, so repeating a run
(or a second visitor asking for it) is instant. Runs on one device queue; a waiting page shows its place.

Reference: B. L. Badger, *Depth and Representation in Vision Models*, arXiv:2211.06496 (2022).
Sample images: scikit-image's data (public domain / CC0), see `assets/CREDITS.md`.
""")
