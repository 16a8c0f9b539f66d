"""What a person reads: the figures, image grids, tables and files of every run and study. The app shows them,
the command line writes them; both get the same bytes. Text (`text`) and drawing (`draw`) are shared;
one module per run kind or study (`files` for a run and a curve, `compare`, `lab`, `manifold`, `sweep`).
"""

from core.report.text import (
    measures_text,
    METRICS, PALETTE, MAX_TICKS, TICK_CHARS, run_title, curve_title, row_value, unconverged, unconverged_text,
    short_label, thin_ticks, tick_label, wrap_words
)
from core.report.draw import (
    CELL, png_bytes, get_font, is_scalable, has_glyph, check_marks, drawable, text_width, truncate_text, wrap_text,
    Cell, dashed_frame, render_rows, column_bands, labelled_grid
)
from core.report.figures import (
    seed_band, curve_figure, log_ticks, is_reference, trajectory_figure, RATIO_TICKS, MAX_RATIO_DECADES, as_matrix,
    distance_figures
)
from core.report.files import (
    result_grid, write_inversion, cell_verdict, gallery, curve_csv, write_curve, trajectory_csv, distances_csv
)
from core.report.compare import DASHES, compare_title, compare_figure, compare_gallery, write_compare
from core.report.lab import (
    lab_figure, LAB_CSV_FIELDS, table_csv, lab_title, lab_grid, write_lab, jacobian_figure, JACOBIAN_CSV_FIELDS,
    jacobian_title, write_jacobian
)
from core.report.manifold import (
    validation_table, summary_lines, manifold_captions, manifold_cell_caption, manifold_order, manifold_grid,
    manifold_figure, manifold_title, manifold_json, write_manifold
)
from core.report.sweep import summary_figure, write_sweep
from core.report.pair import pair_grid, pair_text
from core.report.findings import curve_chart, findings_json, findings_md, report_html, write_findings

__all__ = [
    "curve_chart", "findings_json", "findings_md", "report_html", "write_findings",
    "CELL", "Cell", "DASHES", "JACOBIAN_CSV_FIELDS", "LAB_CSV_FIELDS", "MAX_RATIO_DECADES", "MAX_TICKS", "METRICS",
    "PALETTE", "RATIO_TICKS", "TICK_CHARS", "as_matrix", "cell_verdict", "check_marks", "column_bands",
    "compare_figure", "compare_gallery", "compare_title", "curve_csv", "curve_figure", "curve_title",
    "dashed_frame", "distance_figures", "distances_csv", "drawable", "gallery", "get_font", "has_glyph",
    "is_reference", "is_scalable", "jacobian_figure", "jacobian_title", "lab_figure", "lab_grid", "lab_title",
    "labelled_grid", "log_ticks", "manifold_captions", "manifold_cell_caption", "manifold_figure", "manifold_grid",
    "manifold_json", "manifold_order", "manifold_title", "measures_text", "pair_grid", "pair_text", "png_bytes", "render_rows", "result_grid", "row_value",
    "run_title", "seed_band", "short_label", "summary_figure", "summary_lines", "table_csv", "text_width",
    "thin_ticks", "tick_label", "trajectory_csv", "trajectory_figure", "truncate_text", "unconverged", "unconverged_text",
    "validation_table", "wrap_text", "wrap_words", "write_compare", "write_curve", "write_inversion", "write_jacobian",
    "write_lab", "write_manifold", "write_sweep"
]
