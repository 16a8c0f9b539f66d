"""The studies: loops over many runs, each a question of the paper (docs/method.md). The clarity curve (`curve`),
models side by side (`compare`), the invertibility lab (`lab`: MLPs and Jacobians), the natural-image manifold
(`manifold`) and sweeps over many images (`sweep`, run locally or on Ray: `sweep_tasks`, `sweep_ray`).

Each loop yields rows as its runs finish, every run through `core.jobs.run`, progress through one
`core.jobs.Callbacks`. Nothing here draws or writes files: that is `core.report`'s.
"""

from core.studies.curve import CurveRow, iter_curve, BATCH_STOPS, batched, layer_depth, relative_depth
from core.studies.compare import plan_compare, iter_compare
from core.studies.lab import (
    ACTIVATIONS, build_mlp, embedding_node, lab_preset, plan_mlp, iter_mlp_lab, iter_jacobian, add_clarity,
    jacobian_sizes, default_jacobian_stops,
)
from core.studies.manifold import (
    KINDS, KIND_TEXT, JUDGE, load_inputs, Describer, validate, iter_manifold, natural_gaps,
    layers_of, by_input,
)
from core.studies.sweep import Sweep, run_sweep, summarize, read_results
from core.studies.sweep_ray import MAX_RETRIES, lost_cause
from core.studies.verdicts import CLAIMS, OWN_SCALE, PAIRED, RUNS, SHOWN_ON, PairClaim, curve_claim, pair_claim, runs_of
from core.studies.verdicts import validate as validate_verdict  # `validate` is the manifold's descriptor check
from core.studies.findings import FINDINGS, FindingsPlan, combine, run_findings
from core.studies.deep import deep_stops
from core.studies.forecasts import findings_time, sweep_time
from core.errors import SweepStopped

__all__ = [
    "ACTIVATIONS", "OWN_SCALE", "PAIRED", "RUNS", "SHOWN_ON", "runs_of", "add_clarity", "BATCH_STOPS", "batched", "build_mlp", "by_input", "CLAIMS", "combine",
    "curve_claim", "CurveRow", "deep_stops", "default_jacobian_stops", "Describer", "embedding_node", "FINDINGS",
    "findings_time", "FindingsPlan", "iter_compare", "iter_curve", "iter_jacobian", "iter_manifold",
    "iter_mlp_lab", "jacobian_sizes", "JUDGE", "KIND_TEXT", "KINDS", "lab_preset", "layer_depth", "layers_of", "load_inputs",
    "lost_cause", "MAX_RETRIES", "natural_gaps", "pair_claim", "PairClaim", "plan_compare", "plan_mlp", "read_results", "relative_depth", "run_findings",
    "run_sweep", "summarize", "Sweep", "sweep_time", "SweepStopped", "validate",
]
