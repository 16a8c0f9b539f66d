"""The findings as data: each claim, its stated test, statistic and threshold, and the numbers they use.

Kept apart from the mechanism (timm's `_pretrained` beside `_builder`): a report writes these texts out verbatim, and
the finding functions read the same constants, so the words and the arithmetic cannot drift apart.
"""

from __future__ import annotations

from core.engine.run_reading import NEAR_COPY, NON_UNIQUE

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

N_BOOT = 2000  # bootstrap resamples, as `bootstrap_ci`'s default
SEED = 0  # the bootstrap's fixed seed: the same rows give the same interval
MIN_IMAGES = 2  # fewer images (inputs) than this: no interval worth the name, the verdict is inconclusive
MIN_STOPS = 3  # finding 1: a rank correlation over fewer converged stops says nothing
EARLY = 1 / 3  # relative depth up to this: an early stop (findings 4)
LATE = 2 / 3  # relative depth from this: a late / deep stop (findings 3, 4, 5)
EPS = 1e-9  # tolerance on the depth bands (1/3 and 2/3 are not exact in floating point)
FIRST_CONV_CLARITY = 0.9  # finding 2: "almost perfectly" (core.engine.run_reading.KEEPS_FIDELITY)
ABSTRACT_MARGIN = 0.05  # finding 4's late part: the measure is "kept" while trained - untrained stays above -this
# the measures every finding on the clarity curve (1, 2, 4, 7) is also stated under (core.measures' panel)
MEASURE_WORDS = {"clarity": "clarity (recognisable content)", "fidelity": "pixel fidelity", "structure": "structure"}
CONVERGED_SHARE = 0.5  # finding 3: fewer deep runs than this converged: the optimiser failed, no evidence
RELU_WIDTH = 2.0  # finding 6: ReLU is unique from this width ratio on ...
RELU_NOT = 1.5  # ... and not below this one
UNIQUE_CLARITY = 0.95  # finding 6: a lab row without `unique` is unique at clarity >= this
FLAT_SPREAD = 0.1  # finding 7: "nearly flat": mean spread of clarity over the encoder blocks at most this ...
FLAT_CI = 0.15  # ... with the interval's upper end at most this
PE_SHARE = 0.5  # finding 7: at least this share of the last block's loss is already there at the patch embedding
NATURAL_KINDS = ("natural", "photo", "sample", "image")  # finding 5: inputs of these kinds are not "arbitrary"

# What each finding runs and where a person sees it, as data: the report, the forecast, the pages and the command
# dispatch on these tables instead of on the ids.
FINDINGS = ("1", "2", "3", "4", "5", "6", "7")
RUNS = {"1": "sweep", "2": "sweep", "3": "sweep", "4": "sweep", "5": "manifold", "6": "lab", "7": "sweep"}
UNTRAINED_ONLY = ("1", "2")  # read the untrained checkpoint alone
PAIRED = ("4", "5")  # compare trained with untrained on the same inputs: both checkpoints needed
OWN_SCALE = {"6": "16 px grey MLPs"}  # run at their own fixed scale, whatever the report's models and sizes
SHOWN_ON = {"1": "curve", "2": "curve", "3": "nonunique", "4": "curve", "5": "manifold", "6": "lab", "7": "curve"}


def runs_of(kind: str, findings=FINDINGS) -> tuple[str, ...]:
    """The findings among `findings` that read the runs of `kind` ("sweep", "manifold" or "lab")."""
    return tuple(f for f in FINDINGS if f in findings and RUNS[f] == kind)


def measure_word(measure: str) -> str:
    """A measure as the verdicts' sentences name it ("clarity (recognisable content)", "pixel fidelity")."""
    return MEASURE_WORDS.get(measure, measure)


CLAIMS = {
    "1": "Before training, the deeper the layer, the less accurate its reconstruction.",
    "2": "The first convolution (before pooling) reconstructs almost perfectly; max-pooling (the first pooling or "
         "strided stop) is where exactness is first lost.",
    "3": "Poor deep reconstructions come from non-uniqueness, not from a failing optimiser: m_g reaches m_r while "
         "m_i stays large.",
    "4": "Training to classify makes early layers' reconstructions clearer, but not late layers': those become "
         "abstract images.",
    "5": "Deep layers of a trained model map arbitrary inputs (noise, unrelated images) toward the manifold of "
         "natural images.",
    "6": "In a fully connected network a layer narrower than its input cannot represent it uniquely; with ReLU "
         "about twice the input width is needed.",
    "7": "(ViT) Clarity is nearly flat across the encoder blocks: the information is lost at the patch embedding.",
}
TESTS = {
    "1": f"Untrained model: per image, the Spearman rank correlation rho of clarity with depth over its converged "
         f"stops (at least {MIN_STOPS}); the claim predicts rho < 0. Statistic: mean rho over images with a 95% "
         f"bootstrap CI over images.",
    "2": f"Untrained model: (a) clarity at the first convolution stop, predicted >= {FIRST_CONV_CLARITY:g}; (b) per "
         f"image, clarity at the first pooling/strided stop minus clarity at the first convolution, predicted < 0. "
         f"Means over images with 95% bootstrap CIs over images.",
    "3": f"At the stops in the last third of relative depth (>= 2/3) most runs must have converged (m_g <= m_r on "
         f"every seed; otherwise the optimiser failed and nothing is shown); per image, m_i / ||a'-a||_2 at its "
         f"deepest converged deep stop, predicted >= {NON_UNIQUE:g} (core.engine.run_reading's non-unique band). "
         f"Statistic: median over images with a 95% bootstrap CI.",
    "4": "Delta = trained - untrained clarity, paired by image and stop, both runs converged. Early stops (relative "
         "depth <= 1/3): per image the mean Delta over them, predicted > 0. Late stops (relative depth >= 2/3) "
         "show abstract images: trained - untrained pixel fidelity predicted not > 0 while Delta clarity is "
         f"kept or gained (predicted >= -{ABSTRACT_MARGIN:g}). Means over images with 95% bootstrap CIs over images.",
    "5": "Non-natural inputs (noise, shapes) reconstructed at deep layers (relative depth >= 2/3 where known) by "
         "the untrained and the trained checkpoint, both converged: per input, the mean over layers of trained - "
         "untrained naturalness, predicted > 0. Statistic: mean over inputs with a 95% bootstrap CI over inputs.",
    "6": f"Converged MLP-lab runs: (a) no run with width ratio < 1 is unique, whatever the activation; (b) no ReLU "
         f"run with width ratio < {RELU_NOT:g} is unique; (c) at least half of the ReLU runs with width ratio >= "
         f"{RELU_WIDTH:g} are unique. Unique = the inversion recovered the input (`unique`, else clarity >= "
         f"{UNIQUE_CLARITY:g}); a network whose Jacobian at the image has rank below the input's dimension is not "
         "unique and counts even if its run did not converge (for linear and ReLU networks the map is linear near "
         "the image, so the rank deficit is an exact proof).",
    "7": f"Per image converged at every encoder block: the spread (max - min) of clarity over the block stops, "
         f"predicted <= {FLAT_SPREAD:g}; per image, d = (1 - clarity at the patch embedding) - {PE_SHARE:g} x "
         f"(1 - clarity at the last block), predicted >= 0 (at least half of the loss is already there at the "
         f"patch embedding). Means over images with 95% bootstrap CIs over images.",
}
STATISTICS = {
    "1": "Spearman rho of clarity with depth, mean over images",
    "2": "mean clarity at the first convolution over images (part b, the paired difference, in evidence)",
    "3": "median over images of m_i / ||a'-a||_2 at the image's deepest converged stop in the last third",
    "4": "mean over images of trained - untrained clarity at the early stops (the late stops' in evidence)",
    "5": "mean over inputs of trained - untrained naturalness at deep layers",
    "6": f"fraction of converged ReLU runs with width ratio >= {RELU_WIDTH:g} that are unique (CI over runs)",
    "7": "mean over images of the spread (max - min) of clarity over the encoder blocks (the patch-embedding "
         "part in evidence)",
}
THRESHOLDS = {
    "1": "holds if the CI's upper end < 0; does not hold if its lower end >= 0; inconclusive if it straddles 0 or "
         f"fewer than {MIN_IMAGES} images have {MIN_STOPS} converged stops",
    "2": f"(a) holds if CI low >= {FIRST_CONV_CLARITY:g}, fails if CI high < {FIRST_CONV_CLARITY:g}; (b) holds if "
         "CI high < 0, fails if CI low >= 0; the finding holds if both hold, does not hold if either fails, else "
         f"inconclusive (also without both stops or with fewer than {MIN_IMAGES} images)",
    "3": f"holds if CI low >= {NON_UNIQUE:g}; does not hold if CI high < {NEAR_COPY:g} (near copies: the layer "
         f"keeps the image); otherwise inconclusive, and inconclusive if fewer than {CONVERGED_SHARE:.0%} of the "
         f"deep runs converged or fewer than {MIN_IMAGES} images qualify",
    "4": "early holds if CI low > 0, fails if CI high <= 0; late (abstract images) holds if Delta pixel fidelity's "
         f"CI high <= 0 and Delta clarity's CI low >= -{ABSTRACT_MARGIN:g}, fails if Delta pixel fidelity's CI low > 0 "
         f"or Delta clarity's CI high < -{ABSTRACT_MARGIN:g}; the finding holds if both parts hold, does not hold if "
         "either fails, else inconclusive",
    "5": f"holds if CI low > 0; does not hold if CI high <= 0; inconclusive if it straddles 0 or fewer than "
         f"{MIN_IMAGES} inputs qualify",
    "6": "holds if (a), (b) and (c) all hold; does not hold if any fails; inconclusive if a width group is missing",
    "7": f"flat holds if mean <= {FLAT_SPREAD:g} and CI high <= {FLAT_CI:g}, fails if CI low > {FLAT_SPREAD:g}; "
         "drop holds if CI low >= 0, fails if CI high < 0; the finding holds if both hold, does not hold if either "
         f"fails, else inconclusive (also without a patch-embedding stop, fewer than 2 blocks or {MIN_IMAGES} images)",
}
