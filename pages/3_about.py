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
   weights never change. A blur after each step keeps the image smooth.
4. The result $a_g$ is the layer's **reconstruction**. If several seeds all match the embedding but
   look different, the layer cannot tell those images apart: its representation is **non-unique**.

**Recipes (presets).** Each is plain data built from named parts: objective terms (L1, L2, cosine,
total variation, α-norm, pixel L2), an image parameterisation (pixels, Lucid's Fourier basis,
coarse-to-fine) and per-step transforms (blur, jitter, clamp).
- **paper**: the paper's script exactly: raw $[0, 1]$ pixels, $0.15 \times$ summed L1, a constant step
  of 0.1, a 3×3 blur with σ from 2.4 to 0.4, 500 steps. It often stops short of $m_g \le m_r$.
- **default**: Adam on raw pixels, L1 divided by the target's size, the paper's blur fading to none
  over 200 steps, pixels kept in $[0, 1]$. It stops when every seed has converged and its distance to
  the image has settled (at most a 400-step budget). Chosen by measurement (`python -m benchmarks
  quality`): it converged at every stop we measured and is at least as close to the image as the paper's
  recipe wherever that one gives a recognisable picture.
- **mv** (Mahendran & Vedaldi: squared relative L2, total variation, α-norm) and **natural** (Lucid:
  Fourier parameterisation with colour decorrelation, jitter) for comparison.

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
| **clarity** | $\frac{\mathrm{SSIM}(a_g, a) - \mathrm{SSIM}(a_0, a)}{1 - \mathrm{SSIM}(a_0, a)}$, clipped to $[0, 1]$ | 1 = the image itself, 0 = no better than the run's start |

**Not converged or not unique?** When $m_g \le m_r$ the optimiser matched the embedding as well as a
near-copy of the image does. If $m_i$ is then still far above $\lVert a' - a\rVert_2$, the layer
really cannot distinguish the reconstruction from the image: non-uniqueness, not a failing optimiser.
If $m_g > m_r$, the run has not converged: continue it or raise the iterations; up to
$1.25\,m_r$ the page calls it *borderline*. Unconverged points are drawn hollow on the curves and framed
in red in the gallery. A *degenerate* layer (a near-copy lands at the same embedding, $m_r \approx 0$)
is named, not plotted as a ratio.

**Why clarity is normalised SSIM.** The earlier pixel-distance clarity ranked coloured noise above a
blurred but recognisable silhouette, unlike the eye. SSIM, rescaled so that the start scores 0 and
the image 1, orders reconstructions the way SSIM does (so within one image and one set of seeds the
ranking of depths is SSIM's) and falls along ladders of added noise and of added blur (tested).
$m_i$ stays available as the raw pixel distance.

**Signal health.** For each run the page shows the RMS of the layer's output and the fraction of
activation outputs up to the layer that sit on a flat part of their non-linearity (ReLU at 0, ReLU6 at
0 or 6), where no gradient passes: a mostly dead signal explains a poor reconstruction without saying
anything about what the layer could represent.

### The six findings, and where to check them
1. **Before training, the deeper the layer, the less accurate its reconstruction.** *Clarity curve*
   (one image), *Sweeps* (the mean and its 95% interval over many images) and *Compare models*
   (several architectures on one relative-depth axis). At 32 px untrained ResNet-18, VGG-16 and
   EfficientNet-Lite0 all lose the image with depth, Lite0 soonest; an untrained ViT-B/16 keeps it
   through its twelve blocks, so the fall comes with convolution and pooling rather than with depth
   as such (check it at larger sizes).
2. **The first convolution reconstructs almost exactly; pooling is where exactness is first lost.**
   *Clarity curve*, and the *Invertibility lab*'s Jacobian rank against depth: the rank stays at the
   input's dimension until the first pooling or strided layer.
3. **Poor deep reconstructions come from non-uniqueness, not a failing optimiser.** *Non-uniqueness*:
   $m_g$ reaches $m_r$ while $m_i$ stays large and the seeds disagree (the pixel distances red, the
   embedding distances blue on one scale centred at the near-copy's). The *Invertibility lab* shows
   why: exact non-invertibility (rank lost to fewer outputs than inputs, to pooling and ReLU zeroing)
   and approximate non-invertibility (a growing condition number).
4. **Training makes early layers clearer, not late ones: those become abstract images.** *Clarity
   curve* with both checkpoints of EfficientNet-Lite0, and *Sweeps* over images. (With a decoder that
   converges on both, the early blocks were not clearer after training at 64 px: check it here.)
5. **A trained model's deep layers map arbitrary inputs toward its training data.** *Manifold*: noise,
   shapes and a flat colour inverted at deep layers, untrained and trained side by side, with two
   descriptors of "looks like a photo" (the spectral slope, and the distance of a trained network's
   early batch-norm statistics from ImageNet's) validated on the sample photos first. Both separate
   photos from the generated inputs at 64 px; neither says the trained reconstructions are more
   natural, though they are full of edge-like texture where untrained ones are smooth blobs.
6. **In fully connected networks a layer narrower than the input cannot represent it uniquely; with
   ReLU about twice the width is needed; depth worsens conditioning.** *Invertibility lab*: clarity
   against width per activation and depth, with the Jacobian's exact rank and condition number, and
   the pseudo-inverse as the exact answer for linear networks.

### Pages
- **Invert**: one layer, several seeds, live; the numbers above for each seed; predictions of trained
  classifiers; downloads. The URL holds every setting, so a link reproduces the result;
  `?mode=present` is the projector view.
- **Clarity curve**: clarity (or SSIM, PSNR, $m_i$, $m_g/m_r$) against depth for each checkpoint, with
  a gallery like the paper's figure.
- **Non-uniqueness**: $m_g$ and $m_i$ per seed against the step, and the distances between seeds.
- **Invertibility lab**, **Manifold**, **Compare models**: findings 3 and 6, 5, and 1 across models.
- **Sweeps**: curves over many images with confidence intervals; large sweeps run from the command
  line, on Ray if need be.

Finished runs are cached on disk by their full settings and a hash of the image, so repeating a run
(or a second visitor asking for it) is instant. Runs on one device queue; a waiting page shows its place.

Reference: B. L. Badger, *Depth and Representation in Vision Models*, arXiv:2211.06496 (2022).
Sample images: scikit-image's data (public domain / CC0), see `assets/CREDITS.md`.
""")
