"""A findings report: `findings.json` (every verdict and its settings), `findings.md` (one table) and one
self-contained `report.html` (charts embedded as PNG, no script, no network to open it, readable printed).

The chart of a model and size is drawn here with PIL (no plotting library, nothing to fetch): clarity against
relative depth, one line per checkpoint, the band its 95% bootstrap interval over images, converged runs only
(hollow points: fewer than half of the images converged there).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageColor, ImageDraw

from core.atomic import atomic_write
from core.report.draw import get_font, png_bytes
from core.report.text import checkpoint_colour
from core.studies.stats import bootstrap_ci, evidence
from core.studies.verdicts import OWN_SCALE, RUNS, measure_word, runs_of, validate

if TYPE_CHECKING:
    from core.studies.findings import FindingsReport

VERDICT_COLOURS = {"holds": "#1a7f37", "does not hold": "#b42318", "inconclusive": "#8a6d00"}


def _clean(v):
    """JSON without NaN: None where a number is missing."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def curve_points(rows: list[dict], model_name: str) -> dict[str, list[tuple]]:
    """checkpoint -> [(relative depth, mean clarity, CI low, CI high, share converged, label)] over the images,
    from converged runs only."""
    out: dict[str, list[tuple]] = {}
    mine = [r for r in rows if r["model"] == model_name]
    for ck in dict.fromkeys(r["checkpoint"] for r in mine):
        pts = []
        for layer in dict.fromkeys(r["layer"] for r in mine if r["checkpoint"] == ck):
            rs = [r for r in mine if r["checkpoint"] == ck and r["layer"] == layer]
            ok = [r["clarity"] for r in evidence(rs)]  # converged runs only (core.studies.stats)
            if not ok:
                continue
            lo, hi = bootstrap_ci(ok)
            pts.append((float(rs[0]["relative_depth"]), sum(ok) / len(ok), lo, hi, len(ok) / len(rs),
                        str(rs[0].get("label") or layer)))
        out[str(ck)] = sorted(pts)
    return out


def curve_chart(rows: list[dict], model_name: str, title: str, width: int = 760, height: int = 340) -> Image.Image:
    """The clarity curve of `model` as a PNG-ready PIL image (see the module's docstring)."""
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font, small = get_font(14), get_font(11)
    left, right, top, bottom = 56, 150, 34, 44
    w, h = width - left - right, height - top - bottom
    d.text((left, 8), title, fill="black", font=font)

    def xy(x, y):
        return left + x * w, top + (1 - max(0.0, min(1.0, y))) * h

    for t in (0, 0.25, 0.5, 0.75, 1.0):
        y = xy(0, t)[1]
        d.line([(left, y), (left + w, y)], fill=(225, 225, 225))
        d.text((left - 34, y - 7), f"{t:.2f}", fill=(90, 90, 90), font=small)
        x = xy(t, 0)[0]
        d.text((x - 8, top + h + 6), f"{t:g}", fill=(90, 90, 90), font=small)
    d.rectangle([left, top, left + w, top + h], outline=(160, 160, 160))
    d.text((left + w / 2 - 90, height - 20), "relative depth (stop / number of stops)", fill=(60, 60, 60), font=small)
    d.text((4, top - 22), "clarity", fill=(60, 60, 60), font=small)
    series = curve_points(rows, model_name)
    for i, (ck, pts) in enumerate(series.items()):
        colour = ImageColor.getrgb(checkpoint_colour(ck, list(series)))
        band = (*colour, 50)
        over = Image.new("RGBA", img.size, (0, 0, 0, 0))
        od = ImageDraw.Draw(over)
        if len(pts) > 1:
            poly = [xy(p[0], p[3]) for p in pts] + [xy(p[0], p[2]) for p in reversed(pts)]
            od.polygon(poly, fill=band)
        img.paste(Image.alpha_composite(img.convert("RGBA"), over).convert("RGB"))
        d = ImageDraw.Draw(img)
        line = [xy(p[0], p[1]) for p in pts]
        if len(line) > 1:
            d.line(line, fill=colour, width=2)
        for p, (x, y) in zip(pts, line, strict=True):
            r = 4
            if p[4] >= 0.5:
                d.ellipse([x - r, y - r, x + r, y + r], fill=colour)
            else:
                d.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=2)
        ly = top + 8 + 20 * i
        d.line([(left + w + 14, ly + 7), (left + w + 34, ly + 7)], fill=colour, width=3)
        d.text((left + w + 40, ly), ck[:16], fill="black", font=font)
    return img


def _png_tag(img: Image.Image, alt: str) -> str:
    data = base64.b64encode(png_bytes(img)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _ci(ci) -> str:
    return f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "n/a"


def _size_of(v) -> int | None:
    return (v.evidence or {}).get("size")


def _where(v) -> str:
    """A verdict's size, or the fixed scale of a finding that runs at its own (finding 6: the lab's MLPs)."""
    return OWN_SCALE.get(v.id) or f"{_size_of(v)} px"


def _unconverged(rows) -> int:
    return sum(not r.get("converged") for r in rows)


def findings_json(report: "FindingsReport") -> dict:
    """The report as one JSON-ready object (see docs/findings.md, "Outputs", for its fields)."""
    verdicts = []
    for v in report.verdicts:
        d = v.to_dict()
        validate(d)
        verdicts.append(d)
    return _clean({"written": dt.datetime.now().isoformat(timespec="seconds"), "seconds": report.seconds,
                   "settings": report.settings(), "findings": verdicts, "not_tested_here": report.not_here,
                   "notes": list(report.notes),
                   "runs": report.runs(),
                   "unconverged": {**{f"{k} px": _unconverged(v) for k, v in report.rows.items()},
                                   **{f"finding 5 · {k} px": _unconverged(v) for k, v in report.manifold.items()},
                                   **({"finding 6": _unconverged(report.lab)} if report.lab else {})}})


def findings_md(report: "FindingsReport") -> str:
    """One Markdown table: a line per finding, model and size."""
    lines = ["| finding | model | size | verdict | statistic | value [95% CI] | threshold | n (left out) | why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in report.verdicts:
        left = sum((v.left_out or {}).values())
        cells = [v.id, f"{v.model or 'lab MLPs'} {v.checkpoint or ''}".strip(), _where(v), f"**{v.verdict}**",
                 v.statistic, f"{_num(v.value)} {_ci(v.ci)}", v.threshold, f"{v.n} ({left})", v.why]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    for fid, where in report.not_here.items():
        lines.append(f"| {fid} | | | no verdict | | | | | {where} |")
    lines += by_measure_md(report.verdicts)
    return "\n".join(lines) + "\n" + "".join(f"\n- {n}" for n in report.notes) + ("\n" if report.notes else "")


def by_measure_md(verdicts) -> list[str]:
    """The findings stated under each measure (1, 2, 4, 7): a Markdown table, verdict and value [CI] per measure."""
    stated = [v for v in verdicts if (v.evidence or {}).get("by_measure")]
    if not stated:
        return []
    names = list(stated[0].evidence["by_measure"])
    lines = ["", "Under each measure (the same test, reading another number; clarity's is the verdict above):", "",
             "| finding | model | size | " + " | ".join(measure_word(n) for n in names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for v in stated:
        by = v.evidence["by_measure"]
        cells = [f"**{by[n]['verdict']}** {_num(by[n]['value'])} {_ci(by[n]['ci'])}" if n in by else "" for n in names]
        lines.append(f"| {v.id} | {v.model} {v.checkpoint or ''} | {_where(v)} | " + " | ".join(cells) + " |")
    return lines


def _by_measure_html(v) -> str:
    by = (v.evidence or {}).get("by_measure")
    if not by:
        return ""
    cells = "".join(f"<tr><td>{escape(measure_word(n))}</td><td class='verdict' style='color:"
                    f"{VERDICT_COLOURS.get(b['verdict'], '#111')}'>{escape(b['verdict'])}</td><td>{_num(b['value'])} "
                    f"{_ci(b['ci'])}</td></tr>" for n, b in by.items())
    return f"<table><tr><th>measure</th><th>verdict</th><th>value [95% CI]</th></tr>{cells}</table>"


CSS = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 1.5em auto; color: #111; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; } td, th { border: 1px solid #ccc; padding: 4px 6px;
 vertical-align: top; text-align: left; } .card { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 1em;
 margin: 0.8em 0; break-inside: avoid; } .verdict { font-weight: 700; } img { max-width: 100%; }
 .muted { color: #555; font-size: 0.9em; } @media print { details { display: none; } body { margin: 0; } }
"""


def _names(rows, key: str) -> str:
    return ", ".join(str(x) for x in dict.fromkeys(r.get(key) for r in rows) if x is not None)


def ran_lines(report: "FindingsReport") -> list[str]:
    """What the report ran, part by part, read from the rows themselves (so a report of finding 6 alone names the
    lab's MLPs, not the settings' models), and then the shared settings. Images are named, never by a path."""
    s = report.settings()
    out = []
    for size, rows in report.rows.items():
        judged = {v.id for v in report.verdicts if _size_of(v) == size}
        sweep = [f for f in runs_of("sweep", s["findings"]) if f in judged] or runs_of("sweep", s["findings"])
        out.append(f"Finding{'s' * (len(sweep) > 1)} {', '.join(sweep)} at {size} px: models {_names(rows, 'model')}; "
                   f"checkpoints {_names(rows, 'checkpoint')}; images {_names(rows, 'image')}; {len(rows)} runs.")
    for size, rows in report.manifold.items():
        out.append(f"Finding 5 at {size} px: models {_names(rows, 'model')}; checkpoints {_names(rows, 'checkpoint')};"
                   f" inputs {_names(rows, 'input')}; {len(rows)} runs.")
    if report.lab:
        out.append(f"Finding 6: {OWN_SCALE.get('6', 'lab MLPs')}, images {_names(report.lab, 'image')}; "
                   f"{len(report.lab)} runs.")
    out.append(f"Seeds {', '.join(map(str, s['seeds']))}; preset {s['preset']['name']} ({s['preset']['iters']} "
               f"steps at most); device {s['device']}; {report.seconds:.0f} s.")
    return out


def report_html(report: "FindingsReport") -> str:
    """The self-contained HTML report: settings, the verdict table, a card per verdict with its test in words and
    its evidence, a chart per model and size, and the rows behind them (collapsed)."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>Findings report</title>",
           f"<style>{CSS}</style></head><body>",
           "<h1>Does the paper hold? Findings of Badger (2022), <i>Depth and Representation in Vision Models</i></h1>",
           f"<p class='muted'>{'<br>'.join(escape(line) for line in ran_lines(report))}</p><p class='muted'>"
           "An unconverged run (m_g above m_r on a seed) never counts as evidence (one exact exception: in finding "
           "6's narrow groups a rank-deficient Jacobian proves non-uniqueness without a converged run); each "
           "verdict says how many runs it used and how many it left out.</p>",
           "<h2>Verdicts</h2><table><tr><th>finding</th><th>model</th><th>size</th><th>verdict</th>"
           "<th>value [95% CI]</th><th>n (left out)</th></tr>"]
    for v in report.verdicts:
        colour = VERDICT_COLOURS.get(v.verdict, "#111")
        out.append(f"<tr><td>{escape(v.id)}</td><td>{escape(v.model or 'lab MLPs')} {escape(v.checkpoint or '')}</td>"
                   f"<td>{_where(v)}</td><td class='verdict' style='color:{colour}'>{escape(v.verdict)}</td>"
                   f"<td>{_num(v.value)} {_ci(v.ci)}</td><td>{v.n} ({sum((v.left_out or {}).values())})</td></tr>")
    out.append("</table>")
    for note in report.notes:
        out.append(f"<p class='muted'>Note: {escape(note)}.</p>")
    for fid, where in report.not_here.items():
        out.append(f"<p class='muted'>Finding {escape(fid)}: no verdict here ({escape(where)}).</p>")
    for v in report.verdicts:
        colour = VERDICT_COLOURS.get(v.verdict, "#111")
        left = ", ".join(f"{k}: {n}" for k, n in (v.left_out or {}).items()) or "none"
        out.append(f"<div class='card' id='f{escape(v.id)}-{escape(v.model or 'lab')}-{_size_of(v)}'>"
                   f"<h3>Finding {escape(v.id)} · {escape(v.model or 'lab MLPs')} · {_where(v)}: "
                   f"<span class='verdict' style='color:{colour}'>{escape(v.verdict)}</span></h3>"
                   f"<p><b>Claim.</b> {escape(v.claim)}</p><p><b>Test.</b> {escape(v.test)}</p>"
                   f"<p><b>Statistic.</b> {escape(v.statistic)} = {_num(v.value)} {_ci(v.ci)}; "
                   f"<b>threshold</b> {escape(v.threshold)}.</p><p><b>Why.</b> {escape(v.why)}</p>"
                   + _by_measure_html(v)
                   + f"<p class='muted'>{v.n} runs used; left out: {escape(left)}."
                   + (f" {escape(str(v.evidence['size_dependence']))}." if v.evidence.get("size_dependence") else "")
                   + f" <a href='#{_evidence_id(v)}'>Evidence</a>.</p></div>")
    out += evidence_html(report)
    for size, rows in report.rows.items():
        for model in dict.fromkeys(r["model"] for r in rows):
            out.append(f"<h2 id='curve-{escape(model)}-{size}'>{escape(model)} at {size} px: clarity against depth "
                       "(evidence of findings 1-4 and 7)</h2>")
            out.append(_png_tag(curve_chart(rows, model, f"{model} · {size} px · mean over images, 95% CI"),
                                f"clarity curve of {model} at {size} px"))
    out.append("<details><summary>Every run behind the verdicts</summary><table><tr><th>size</th><th>image</th>"
               "<th>model</th><th>checkpoint</th><th>stop</th><th>clarity</th><th>status</th></tr>")
    for size, rows in report.rows.items():
        for r in rows:
            out.append(f"<tr><td>{size}</td><td>{escape(str(r['image']))}</td><td>{escape(str(r['model']))}</td>"
                       f"<td>{escape(str(r['checkpoint']))}</td><td>{escape(str(r.get('label') or r['layer']))}</td>"
                       f"<td>{_num(r.get('clarity'))}</td><td>{escape(str(r.get('status')))}</td></tr>")
    out.append("</table></details></body></html>")
    return "\n".join(out)


def _evidence_id(v) -> str:
    """Where a verdict's evidence is: its model's curve at its size (1-4, 7), finding 5's table at its size, or
    finding 6's table."""
    if RUNS.get(v.id) == "lab":
        return f"evidence-{v.id}"
    if RUNS.get(v.id) == "manifold":
        return f"evidence-{v.id}-{_size_of(v)}"
    return f"curve-{escape(v.model or '')}-{_size_of(v)}"


def evidence_html(report: "FindingsReport") -> list[str]:
    """Finding 5's table (naturalness of each input's reconstructions, untrained against trained) and finding 6's
    (the lab's MLPs: unique configurations and Jacobian ranks by activation and width), converged or not."""
    out = []
    for size, rows in report.manifold.items():
        out.append(f"<h2 id='evidence-5-{size}'>Finding 5 at {size} px: non-natural inputs at deep stops</h2>"
                   "<p class='muted'>Naturalness = -|spectral slope - 2| of the reconstructions (mean over seeds; "
                   "natural images have a slope near 2). Only rows converged at both checkpoints are evidence.</p>"
                   "<table><tr><th>model</th><th>stop</th><th>input</th><th>input's slope</th>"
                   "<th>untrained slope</th><th>trained slope</th><th>trained − untrained naturalness</th></tr>")
        by = {(r["model"], r["layer"], r["input"], r["checkpoint"]): r for r in rows}
        for (model, layer, inp, ck), r in by.items():
            if ck != "untrained":
                continue
            t = by.get((model, layer, inp, "trained"))
            both = t is not None and r.get("converged") and t.get("converged")
            delta = (t["naturalness"] - r["naturalness"]) if both and None not in (t["naturalness"],
                                                                                   r["naturalness"]) else None
            tag = "" if both else " (not converged: left out)"
            out.append(f"<tr><td>{escape(model)}</td><td>{escape(str(r.get('label') or layer))}</td>"
                       f"<td>{escape(inp)}</td><td>{_num(r.get('input_spectral_slope'), 2)}</td>"
                       f"<td>{_num(r.get('spectral_slope'), 2)}</td>"
                       f"<td>{_num((t or {}).get('spectral_slope'), 2)}</td><td>{_num(delta)}{tag}</td></tr>")
        out.append("</table>")
    if report.lab:
        out.append("<h2 id='evidence-6'>Finding 6: the lab's one-hidden-layer MLPs (16 × 16 grey images)</h2>"
                   "<table><tr><th>activation</th><th>width / input</th><th>runs</th><th>converged</th>"
                   "<th>unique (every seed recovers the image; full-rank Jacobian)</th><th>Jacobian rank &lt; 256</th>"
                   "<th>mean clarity</th></tr>")
        cells: dict = {}
        for r in report.lab:
            cells.setdefault((r["activation"], r["width_ratio"]), []).append(r)
        for (act, w), rs in sorted(cells.items()):
            out.append(f"<tr><td>{escape(act)}</td><td>{w:g}</td><td>{len(rs)}</td>"
                       f"<td>{sum(bool(r.get('converged')) for r in rs)}</td><td>"
                       f"{sum(bool(r['unique']) and not r.get('rank_deficient') for r in rs)}"
                       f"</td><td>{sum(bool(r.get('rank_deficient')) for r in rs)}</td>"
                       f"<td>{_num(sum(r['clarity'] for r in rs) / len(rs))}</td></tr>")
        out.append("</table>")
    return out


def write_findings(report: "FindingsReport", out: str | Path) -> dict[str, Path]:
    """Write findings.json, findings.md and report.html into `out`; returns their paths by name."""
    out = Path(out)
    paths = {"json": out / "findings.json", "md": out / "findings.md", "html": out / "report.html"}
    atomic_write(paths["json"], json.dumps(findings_json(report), indent=1, allow_nan=False))
    atomic_write(paths["md"], findings_md(report))
    atomic_write(paths["html"], report_html(report))
    return paths
