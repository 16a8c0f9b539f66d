"""The studies: loops over many runs, each a question of the paper (docs/method.md). The clarity curve (`curve`),
models side by side (`compare`), the invertibility lab (`lab`: MLPs and Jacobians), the natural-image manifold
(`manifold`) and sweeps over many images (`sweep`, run locally or on Ray: `sweep_tasks`, `sweep_ray`).

Each loop yields rows as its runs finish, every run through `core.jobs.run`, progress through one
`core.jobs.Callbacks`. Nothing here draws or writes files: that is `core.report`'s.
"""

from core.studies.curve import CurveRow, relative_depth, resolve_layers, iter_curve, BATCH_STOPS, batched, clarity_curve
from core.studies.compare import (
    spread, parse_models, common_sizes, check_sizes, Line, layers_for, plan_compare, CompareRow, iter_compare,
    MAX_BINS, default_bins, align
)
from core.studies.lab import (
    ACTIVATIONS, DEFAULT_WIDTHS, DEFAULT_ACTIVATIONS, DEFAULT_DEPTHS, LAB_SIZE, LAB_ITERS, MAX_WIDTH, MAX_DEPTH,
    TOP_K, MAX_JACOBIAN_MB, EPS64, MLPConfig, LabMLP, mlp_architecture, build_mlp, embedding_node, grey_image,
    lab_preset, linear_pinv, Spectrum, jacobian_matrix, spectrum_of, layer_jacobian, MLPRow, plan_mlp, iter_mlp_lab,
    mlp_lab, JacobianRow, iter_jacobian, add_clarity, JACOBIAN_SIZES, jacobian_sizes, default_jacobian_stops
)
from core.studies.manifold import (
    KINDS, GROUPS, KIND_TEXT, JUDGE, BN_LAYERS, SLOPE_FIT, NATURAL_SLOPE, CK_ORDER, default_size, make_input,
    expand_inputs, load_inputs, radial_power, spectral_slope, pink_noise, Descriptor, SLOPE, BN, JUDGE_DESC,
    Describer, finite_mean, auc, validate, gap, ManifoldRow, default_layers, iter_manifold, natural_gaps, layers_of,
    by_input
)
from core.studies.sweep_tasks import SweepImage, Task, worker_name, row_of, execute, by_image, execute_stops
from core.studies.sweep import (
    IMAGE_SUFFIXES, COLUMNS, SUMMARY_COLUMNS, find_images, Sweep, Outcome, Ledger, run_sweep, collect, bootstrap_ci,
    summarize, read_results
)
from core.studies.sweep_ray import MAX_RETRIES, lost_cause
from core.studies.verdicts import VERDICT_FIELDS, CLAIMS, Verdict, evaluate
from core.studies.verdicts import validate as validate_verdict  # `validate` is the manifold's descriptor check
from core.studies.findings import FINDINGS, FindingsPlan, FindingsReport, combine, judge, run_findings
from core.studies.findings_runs import deep_stops
from core.studies.forecasts import findings_time, sweep_lines, sweep_time
from core.errors import SweepStopped

__all__ = [
    "deep_stops", "findings_time", "sweep_lines", "sweep_time",
    "CLAIMS", "FINDINGS", "combine", "FindingsPlan", "FindingsReport", "VERDICT_FIELDS", "Verdict", "evaluate", "judge", "run_findings", "validate_verdict",
    "ACTIVATIONS", "BATCH_STOPS", "BN", "BN_LAYERS", "CK_ORDER", "COLUMNS", "CompareRow", "CurveRow",
    "DEFAULT_ACTIVATIONS", "DEFAULT_DEPTHS", "DEFAULT_WIDTHS", "Describer", "Descriptor", "EPS64", "GROUPS",
    "IMAGE_SUFFIXES", "JACOBIAN_SIZES", "JUDGE", "JUDGE_DESC", "JacobianRow", "KINDS", "KIND_TEXT", "LAB_ITERS",
    "LAB_SIZE", "LabMLP", "Ledger", "Line", "MAX_BINS", "MAX_DEPTH", "MAX_JACOBIAN_MB", "MAX_RETRIES", "MAX_WIDTH",
    "MLPConfig",
    "MLPRow", "ManifoldRow", "NATURAL_SLOPE", "Outcome", "SLOPE", "SLOPE_FIT", "SUMMARY_COLUMNS", "Spectrum",
    "Sweep", "SweepImage", "SweepStopped", "TOP_K", "Task", "add_clarity", "align", "auc", "batched", "bootstrap_ci", "build_mlp",
    "by_image", "by_input", "check_sizes", "clarity_curve", "collect", "common_sizes", "default_bins",
    "default_jacobian_stops", "default_layers", "default_size", "embedding_node", "execute", "execute_stops",
    "expand_inputs", "find_images", "finite_mean", "gap", "grey_image", "iter_compare", "iter_curve",
    "iter_jacobian", "iter_manifold", "iter_mlp_lab", "jacobian_matrix", "jacobian_sizes", "lab_preset",
    "layer_jacobian", "layers_for", "layers_of", "linear_pinv", "load_inputs", "lost_cause", "make_input", "mlp_architecture",
    "mlp_lab", "natural_gaps", "parse_models", "pink_noise", "plan_compare", "plan_mlp", "radial_power",
    "read_results", "relative_depth", "resolve_layers", "row_of", "run_sweep", "spectral_slope", "spectrum_of",
    "spread", "summarize", "validate", "worker_name"
]
