"""What a person reads: the figures, image grids, tables and files of every run and study. The app shows them,
the command line writes them; both get the same bytes. Text (`text`) and drawing (`draw`) are shared;
one module per run kind or study (`files` for a run and a curve, `compare`, `lab`, `manifold`, `sweep`).
"""

from core.report.text import measures_text, METRICS, run_title, unconverged_text
from core.report.draw import png_bytes
from core.report.figures import curve_figure, trajectory_figure, distance_figures
from core.report.files import result_grid, gallery, curve_csv, trajectory_csv, distances_csv
from core.report.compare import compare_title, compare_figure, compare_gallery
from core.report.lab import (
    lab_figure, LAB_CSV_FIELDS, table_csv, lab_title, lab_grid, jacobian_figure, JACOBIAN_CSV_FIELDS,
    jacobian_title,
)
from core.report.manifold import (
    validation_table, summary_lines, manifold_captions, manifold_cell_caption, manifold_grid, manifold_figure,
    manifold_title, manifold_json,
)
from core.report.sweep import summary_figure, write_sweep
from core.report.pair import pair_grid, pair_text
from core.report.findings import findings_json, findings_md, report_html

__all__ = [
    "compare_figure", "compare_gallery", "compare_title", "curve_csv", "curve_figure", "distance_figures",
    "distances_csv", "findings_json", "findings_md", "gallery", "JACOBIAN_CSV_FIELDS", "jacobian_figure",
    "jacobian_title", "LAB_CSV_FIELDS", "lab_figure", "lab_grid", "lab_title", "manifold_captions",
    "manifold_cell_caption", "manifold_figure", "manifold_grid", "manifold_json", "manifold_title",
    "measures_text", "METRICS", "pair_grid", "pair_text", "png_bytes", "report_html", "result_grid", "run_title",
    "summary_figure", "summary_lines", "table_csv", "trajectory_csv", "trajectory_figure", "unconverged_text",
    "validation_table", "write_sweep",
]
