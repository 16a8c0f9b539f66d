"""The paper's findings as falsifiable tests: rows of many inversion runs in, one verdict per finding out.

Each finding of docs/method.md (its "The findings", the ViT blog's included) becomes a stated test:
a hypothesis, a measurement per image, a statistic over images with a 95% percentile bootstrap interval
(`core.studies.stats.bootstrap_ci`, fixed seed, values ordered by image name, so the same rows always give the
same interval whatever their order) and a threshold that says "holds", "does not hold" or "inconclusive". The
functions are pure (numpy and the standard library); nothing is drawn or written.

The rule every finding obeys: an unconverged run is never evidence (the one exception is exact: in finding 6's
narrow groups a rank-deficient Jacobian proves a lab MLP non-unique without an optimiser, see `finding_6`).
A row whose `converged` is false (m_g > m_r on some seed; "borderline" rows included), whose status is
"degenerate" or "error", or whose number is missing is left out of every statistic. Each `Verdict` says how
many rows it used (`n`) and how many it left out (`left_out`, reason -> count); the two add up to the rows in
the finding's scope (its model and checkpoints), so structural
reasons ("middle third of depth", "not the image's deepest converged deep stop") are counted too.

Rows (one per image x model x checkpoint x layer, seeds averaged) are the sweep's (`core.studies.sweep.COLUMNS`)
plus `label`/`kind`, see `finding_1`. Findings 5 (manifold) and 6 (MLP lab) read their own fields, see there.

The package, by job: `claims` (the words and thresholds, data only), `rows` (which rows are evidence, statistics
with intervals), `verdict` (the record and its JSON check), `stops` (what kind of layer a stop is), then the
findings by what they read: `depth` (1, 2, 4: the clarity curve), `uniqueness` (3 and 6), `natural` (5: the
manifold) and `vit` (7); `evaluate` runs every finding the rows allow; `one_pair` reads finding 4 on one pair of runs (the
Invert page's side by side). Imports run down that list only.

    verdicts = evaluate(rows)                        # every finding the rows allow, per model
    [v.to_dict() for v in verdicts]                  # JSON-ready; `validate(d)` checks one
"""

from core.studies.verdicts.claims import (
    ABSTRACT_MARGIN,
    measure_word,
    CLAIMS, CONVERGED_SHARE, EARLY, EPS, FAILS, FIRST_CONV_CLARITY, FLAT_CI, FLAT_SPREAD, HOLDS, INCONCLUSIVE, LATE,
    MIN_IMAGES, MIN_STOPS, N_BOOT, NATURAL_KINDS, PE_SHARE, RELU_NOT, RELU_WIDTH, SEED, STATISTICS, TESTS,
    THRESHOLDS, UNIQUE_CLARITY, VERDICTS,
    FINDINGS, OWN_SCALE, PAIRED, RUNS, SHOWN_ON, UNTRAINED_ONLY, runs_of,
)
from core.studies.verdicts.rows import reason_out, spearman
from core.studies.verdicts.verdict import VERDICT_FIELDS, Verdict, validate
from core.studies.verdicts.stops import GLOBAL_POOL_LAYERS, is_block, is_first_conv, is_patch_embedding, is_pooling, is_vit
from core.studies.verdicts.depth import finding_1, finding_2, finding_4
from core.studies.verdicts.uniqueness import finding_3, finding_6
from core.studies.verdicts.natural import finding_5
from core.studies.verdicts.vit import finding_7
from core.studies.verdicts.measures import STATED, under_each, where_it_holds
from core.studies.verdicts.evaluate import evaluate
from core.studies.verdicts.one_pair import PairClaim, curve_claim, pair_claim

__all__ = [
    "FINDINGS", "OWN_SCALE", "PAIRED", "RUNS", "SHOWN_ON", "UNTRAINED_ONLY", "runs_of",
    "CLAIMS", "CONVERGED_SHARE", "EARLY", "EPS", "FAILS", "FIRST_CONV_CLARITY", "FLAT_CI", "FLAT_SPREAD",
    "GLOBAL_POOL_LAYERS", "HOLDS", "INCONCLUSIVE", "LATE", "MIN_IMAGES", "MIN_STOPS", "N_BOOT", "NATURAL_KINDS",
    "PE_SHARE", "RELU_NOT", "RELU_WIDTH", "SEED", "STATISTICS", "TESTS", "THRESHOLDS", "UNIQUE_CLARITY",
    "VERDICTS", "VERDICT_FIELDS", "Verdict", "evaluate", "finding_1", "finding_2", "finding_3", "finding_4",
    "finding_5", "finding_6", "finding_7", "is_block", "is_first_conv", "is_patch_embedding", "is_pooling",
    "is_vit", "curve_claim", "pair_claim", "PairClaim", "reason_out", "spearman", "validate", "ABSTRACT_MARGIN", "STATED", "measure_word", "under_each", "where_it_holds",
]
