"""The drift report as one self-contained HTML file.

`render_html` takes the JSON form of a drift report (`report.to_json()`) and returns a page that
opens anywhere, offline and years later: CSS is inline, plots are inline SVG drawn here, and the
page loads nothing (no script, font, image or stylesheet from anywhere). It is a pure function of
the dict, so it does not depend on how the report was computed.

Column names, categories, sources and metric names are user data: every one of them goes
through `html.escape` before it reaches the page, so a category called `<script>` is text.
Numbers may be None, NaN or infinite (a metric that does not apply, a column missing on one
side); they are shown as a dash or an infinity sign, never as a broken plot.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["render_html"]

Column = Mapping[str, Any]

REFERENCE_COLOR = "#4c78a8"
CURRENT_COLOR = "#f58518"
# Categorical plots show this many categories, the largest ones; the rest share one bar.
TOP_CATEGORIES = 20
# Labels longer than this are cut in plots (the full text stays in the tooltip and the table).
LABEL_CHARS = 28

PLOT_WIDTH = 640
MARGIN_LEFT = 64
MARGIN_RIGHT = 20
MARGIN_TOP = 34
MARGIN_BOTTOM = 46
CATEGORY_LABEL_WIDTH = 190
CATEGORY_ROW = 26

CSS = """
:root { --ref: #4c78a8; --cur: #f58518; --drift: #c0392b; --ok: #2e7d32; --muted: #5f6b7a;
  --line: #dde3ea; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  color: #1f2933; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 36px 0 12px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0; overflow-wrap: anywhere; }
.verdict { padding: 12px 16px; border-radius: 6px; border-left: 6px solid; margin: 0 0 16px;
  background: var(--bg-soft); }
.verdict strong { font-size: 16px; }
.verdict.drift { border-color: var(--drift); background: #fdf0ee; }
.verdict.ok { border-color: var(--ok); background: #eef7ef; }
.verdict.unknown { border-color: var(--muted); }
.sources { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
.sources dt { font-weight: 600; }
.sources dd { margin: 0; overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
  vertical-align: -1px; }
.swatch.reference { background: var(--ref); }
.swatch.current { background: var(--cur); }
table { border-collapse: collapse; }
table.metrics { width: 100%; }
table.metrics th, table.metrics td { padding: 6px 10px; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; }
table.metrics th { background: var(--bg-soft); font-weight: 600; white-space: nowrap; }
table.metrics td.name { font-weight: 600; }
table.metrics td.name a { display: block; max-width: 280px; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
table.metrics td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.metrics tr.drifted td.name a { color: var(--drift); }
a { color: #1a5fb4; text-decoration: none; }
a:hover { text-decoration: underline; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.badge.drift { background: #fbe3df; color: var(--drift); }
.badge.ok { background: #e3f2e4; color: var(--ok); }
.badge.missing { background: #fde9c8; color: #8a4b00; }
.other { color: var(--muted); font-size: 13px; }
.other span { white-space: nowrap; margin-right: 12px; }
.other b { color: #1f2933; font-weight: 500; font-variant-numeric: tabular-nums; }
section.column { border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
  margin: 0 0 18px; }
section.column.drifted { border-left: 5px solid var(--drift); }
.column-meta { color: var(--muted); margin: 2px 0 12px; }
.column-body { display: flex; flex-wrap: wrap; gap: 12px 28px; align-items: flex-start; }
figure.column-plot { margin: 0; flex: 0 1 640px; min-width: 0; }
figure.column-plot svg { display: block; width: 100%; height: auto; max-width: 640px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  fill: #3e4c59; }
svg text.axis-label { font-size: 12px; fill: #1f2933; }
svg text.note { font-size: 13px; fill: var(--muted); }
svg .grid { stroke: #e8ecf0; }
svg .axis { stroke: #9aa5b1; }
table.summary { font-size: 13px; font-variant-numeric: tabular-nums; }
table.summary th, table.summary td { padding: 3px 10px; border-bottom: 1px solid var(--line);
  text-align: right; }
table.summary th:first-child, table.summary td:first-child { text-align: left;
  color: var(--muted); }
details.undrifted > summary { cursor: pointer; font-weight: 600; margin: 0 0 12px; }
.empty { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The drift report `report` (the dict of `report.to_json()`) as one self-contained page.

    The page opens with the verdict, then a table of every column (drifted ones first, so the
    reader sees what moved without scrolling), then a plot per column of the reference and
    current distributions overlaid. Undrifted columns' plots are folded away in `<details>`.
    Each plot is a `<figure class="column-plot" data-column=NAME data-drifted=true|false>`.
    """
    columns = _ordered_columns(report.get("columns"))
    reference = _side(report, "reference")
    current = _side(report, "current")
    title = f"Drift report: {reference[0]} → {current[0]}"
    body = "\n".join(
        [
            f"<h1>{escape(title)}</h1>",
            _verdict(report, columns),
            _sources(reference, current),
            "<h2>Columns</h2>",
            _metrics_table(columns),
            *_column_sections(columns),
            _footer(report),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# -- reading the report: tolerant of missing keys and of values that are not numbers ----------


def _number(value: object) -> float | None:
    """`value` as a finite float, or None: NaN and None both mean 'does not apply' here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: object, default: str = "") -> str:
    return default if value is None else str(value)


def _is_drifted(column: Column) -> bool:
    return column.get("drifted") is True


def _is_missing(column: Column) -> bool:
    return column.get("method") == "missing"


def _ordered_columns(raw: object) -> list[Column]:
    """Drifted columns first, then the rest; within each, the most alarming first.

    Missing columns lead (they break any consumer), then columns by score over threshold, which
    compares columns judged by different methods on one scale. Ties keep the report's order.
    """
    columns = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []

    def key(column: Column) -> tuple[bool, bool, float]:
        score, threshold = _number(column.get("score")), _number(column.get("threshold"))
        ratio = score / threshold if score is not None and threshold else -math.inf
        return (not _is_drifted(column), not _is_missing(column), -ratio)

    return sorted(columns, key=key)


def _side(report: Mapping[str, Any], which: str) -> tuple[str, int | None]:
    """The source and row count of the reference or current data."""
    side = report.get(which)
    side = side if isinstance(side, Mapping) else {}
    rows = _number(side.get("rows"))
    return _text(side.get("source"), which), None if rows is None else int(rows)


# -- formatting -------------------------------------------------------------------------------


def _fmt(value: object) -> str:
    """A number for a table cell: 4 significant digits, thousands grouped, a dash for 'n/a'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "\u2212∞"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if 1e4 <= abs(value) < 1e12:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return "—" if value is None else escape(str(value))


def _tick(value: float) -> str:
    """A tick label: the shortest form of a 'nice' number (no 0.30000000000000004)."""
    if 1e4 <= abs(value) < 1e12 and value == round(value):
        return f"{value:,.0f}".replace("-", "\u2212")
    return f"{value:.6g}".replace("-", "\u2212")


def _percent(value: float, step: float = 0.01) -> str:
    """A share as a percentage with as many decimals as a step of `step` needs (2.5% not 2%)."""
    decimals = next((d for d in range(4) if abs(round(step * 100, d) - step * 100) < 1e-9), 4)
    return f"{value * 100:.{decimals}f}%"


def _cut(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _rows(rows: int | None) -> str:
    return "rows unknown" if rows is None else f"{rows:,} rows"


# -- the page's parts -------------------------------------------------------------------------


def _verdict(report: Mapping[str, Any], columns: Sequence[Column]) -> str:
    """The dataset verdict in words, with the rule that produced it."""
    drifted = _number(report.get("drifted_columns"))
    compared = _number(report.get("columns_compared"))
    n_drifted = int(drifted) if drifted is not None else sum(map(_is_drifted, columns))
    n_compared = int(compared) if compared is not None else len(columns)
    share = f" ({n_drifted / n_compared:.0%})" if n_compared else ""
    counts = f"{n_drifted} of {n_compared} columns drifted{share}."
    rule_share = _number(report.get("drift_share"))
    rule = (
        f" The dataset counts as drifted when at least {rule_share:.0%} of its columns drift."
        if rule_share is not None
        else ""
    )
    verdict = report.get("drifted")
    if verdict is True:
        css, headline = "drift", "Dataset drift detected"
    elif verdict is False:
        css, headline = "ok", "No dataset drift"
    else:
        css, headline = "unknown", "Dataset verdict unknown"
    return f'<p class="verdict {css}"><strong>{headline}.</strong> {counts}{rule}</p>'


def _sources(reference: tuple[str, int | None], current: tuple[str, int | None]) -> str:
    return (
        '<dl class="sources">'
        f'<dt><span class="swatch reference"></span>Reference</dt>'
        f"<dd>{escape(reference[0])} · {_rows(reference[1])}</dd>"
        f'<dt><span class="swatch current"></span>Current</dt>'
        f"<dd>{escape(current[0])} · {_rows(current[1])}</dd></dl>"
    )


def _badge(column: Column) -> str:
    if _is_missing(column):
        return '<span class="badge missing">missing</span>'
    if _is_drifted(column):
        return '<span class="badge drift">drift</span>'
    if column.get("drifted") is False:
        return '<span class="badge ok">no drift</span>'
    return '<span class="badge">unknown</span>'


def _other_metrics(column: Column) -> str:
    """The metrics other than the one the verdict used: context, not the verdict."""
    metrics = column.get("metrics")
    if not isinstance(metrics, Mapping):
        return ""
    method = column.get("method")
    return " ".join(
        f"<span>{escape(str(name))} <b>{_fmt(value)}</b></span>"
        for name, value in metrics.items()
        if name != method
    )


def _metrics_table(columns: Sequence[Column]) -> str:
    if not columns:
        return '<p class="empty">No columns were compared.</p>'
    header = "".join(
        f"<th>{h}</th>"
        for h in ("Column", "Kind", "Method", "Score", "Threshold", "Verdict", "Other metrics")
    )
    rows = []
    for index, column in enumerate(columns):
        name = escape(_text(column.get("name")))
        css = "drifted" if _is_drifted(column) else "undrifted"
        rows.append(
            f'<tr class="{css}" data-column="{name}">'
            f'<td class="name"><a href="#col-{index}" title="{name}">{name}</a></td>'
            f"<td>{escape(_text(column.get('kind'), '—'))}</td>"
            f"<td>{escape(_text(column.get('method'), '—'))}</td>"
            f'<td class="num">{_fmt(column.get("score"))}</td>'
            f'<td class="num">{_fmt(column.get("threshold"))}</td>'
            f"<td>{_badge(column)}</td>"
            f'<td class="other">{_other_metrics(column)}</td></tr>'
        )
    return (
        f'<table class="metrics"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _column_sections(columns: Sequence[Column]) -> list[str]:
    """Drifted columns' plots open; the others folded in one `<details>` to keep the page short."""
    drifted = [(i, c) for i, c in enumerate(columns) if _is_drifted(c)]
    rest = [(i, c) for i, c in enumerate(columns) if not _is_drifted(c)]
    parts = []
    if drifted:
        parts.append("<h2>Drifted columns</h2>")
        parts.extend(_column_section(i, c) for i, c in drifted)
    if rest:
        parts.append("<h2>Columns without drift</h2>")
        noun = "column" if len(rest) == 1 else "columns"
        parts.append(
            f'<details class="undrifted"><summary>Show {len(rest)} {noun}</summary>'
            + "".join(_column_section(i, c) for i, c in rest)
            + "</details>"
        )
    return parts


def _column_meta(column: Column) -> str:
    """One line under the heading: kind, and how the verdict was reached."""
    kind = escape(_text(column.get("kind"), "unknown kind"))
    if _is_missing(column):
        side = _missing_side(column)
        return f"{kind} · missing in the {side} data" if side else f"{kind} · missing on one side"
    method = escape(_text(column.get("method"), "no method"))
    score, threshold = column.get("score"), column.get("threshold")
    if _number(score) is None:
        return f"{kind} · {method}: no score"
    relation = "≥" if _is_drifted(column) else "<"
    return f"{kind} · {method} {_fmt(score)} {relation} threshold {_fmt(threshold)}"


def _missing_side(column: Column) -> str | None:
    for side in ("reference", "current"):
        summary = column.get(f"{side}_summary")
        if not isinstance(summary, Mapping) or not summary:
            return side
    return None


def _column_section(index: int, column: Column) -> str:
    name = _text(column.get("name"))
    drifted = _is_drifted(column)
    css = "column drifted" if drifted else "column"
    return (
        f'<section class="{css}" id="col-{index}">'
        f"<h3>{escape(name)} {_badge(column)}</h3>"
        f'<p class="column-meta">{_column_meta(column)}</p>'
        '<div class="column-body">'
        f'<figure class="column-plot" data-column="{escape(name)}" '
        f'data-drifted="{"true" if drifted else "false"}">{_plot(name, column)}</figure>'
        f"{_summary_table(column)}</div></section>"
    )


def _summary_table(column: Column) -> str:
    """Reference and current summary statistics side by side (count, nulls, mean, ...)."""
    ref = column.get("reference_summary")
    cur = column.get("current_summary")
    ref = ref if isinstance(ref, Mapping) else {}
    cur = cur if isinstance(cur, Mapping) else {}
    keys = list(dict.fromkeys([*ref, *cur]))
    if not keys:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(k))}</td><td>{_fmt(ref.get(k))}</td><td>{_fmt(cur.get(k))}</td></tr>"
        for k in keys
    )
    return (
        '<table class="summary"><thead><tr><th></th>'
        '<th><span class="swatch reference"></span>reference</th>'
        '<th><span class="swatch current"></span>current</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


# -- plots ------------------------------------------------------------------------------------


def _plot(name: str, column: Column) -> str:
    """The column's distribution plot, or a framed note saying why there is none."""
    dist = column.get("distribution")
    kind = dist.get("type") if isinstance(dist, Mapping) else None
    if isinstance(dist, Mapping) and kind == "histogram":
        return _histogram_svg(name, dist)
    if isinstance(dist, Mapping) and kind == "categories":
        return _categories_svg(name, dist)
    if _is_missing(column):
        side = _missing_side(column)
        where = f"in the {side} data" if side else "on one side"
        return _note_svg(name, f"No distribution to plot: the column is missing {where}.")
    return _note_svg(name, "No distribution to plot.")


def _svg_open(name: str, height: int) -> str:
    label = escape(f"Distribution of {name}: reference and current")
    return (
        f'<svg viewBox="0 0 {PLOT_WIDTH} {height}" width="{PLOT_WIDTH}" height="{height}" '
        f'role="img" aria-label="{label}">'
    )


def _note_svg(name: str, message: str) -> str:
    """A framed message where a plot would be, so every column still has its figure."""
    return (
        f"{_svg_open(name, 90)}"
        f'<rect x="0.5" y="0.5" width="{PLOT_WIDTH - 1}" height="89" rx="6" fill="#f6f8fa" '
        'stroke="#dde3ea"/>'
        f'<text class="note" x="{PLOT_WIDTH / 2}" y="50" text-anchor="middle">'
        f"{escape(message)}</text></svg>"
    )


def _legend(x: float, y: float) -> str:
    items = []
    for offset, label, color in ((0, "reference", REFERENCE_COLOR), (92, "current", CURRENT_COLOR)):
        items.append(
            f'<rect x="{x + offset}" y="{y - 9}" width="12" height="12" rx="2" fill="{color}" '
            f'fill-opacity="0.55" stroke="{color}"/>'
            f'<text x="{x + offset + 18}" y="{y + 1}">{label}</text>'
        )
    return "".join(items)


def _probabilities(raw: object, length: int) -> list[float] | None:
    """Shares as floats (None or NaN count as 0), or None if the list has the wrong length."""
    if not isinstance(raw, list) or len(raw) != length:
        return None
    return [max(_number(p) or 0.0, 0.0) for p in raw]


def _nice_step(span: float, target: int) -> float:
    """A 1, 2, 2.5 or 5 times a power of ten step giving about `target` ticks over `span`."""
    raw = span / max(target, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude * (1 + 1e-9))


def _ticks(low: float, high: float, target: int) -> list[float]:
    if not high > low:
        return [low]
    step = _nice_step(high - low, target)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [i * step for i in range(first, last + 1)][:50]


def _y_axis(top: float, x0: float, x1: float, y0: float, y1: float, density: bool) -> str:
    """Gridlines and labels for shares from 0 (at y0) to `top` (at y1)."""
    step = _nice_step(top, 4)
    parts = []
    for value in _ticks(0.0, top, 4):
        y = y0 - (y0 - y1) * value / top
        label = _tick(value) if density else _percent(value, step)
        parts.append(
            f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    title = "share of rows per unit" if density else "share of rows"
    middle = (y0 + y1) / 2
    parts.append(
        f'<text class="axis-label" x="14" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle:.1f})">{title}</text>'
    )
    return "".join(parts)


def _plot_edges(raw: object, bins: int) -> list[float] | None:
    """Finite, strictly increasing bin edges to draw, or None if there are none to use.

    Open-ended bins (an infinite or missing edge) are drawn one typical bin wide; a bin with no
    width (a constant column gives edges [v, v]) is drawn one unit wide so it stays visible.
    """
    if not isinstance(raw, list) or bins < 1 or len(raw) != bins + 1:
        return None
    edges = [_number(e) for e in raw]
    finite = [e for e in edges if e is not None]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    if high == low:
        return [low - 0.5 + i / bins for i in range(bins + 1)]
    width = (high - low) / max(len(finite) - 1, 1)
    first = edges.index(finite[0])
    filled = [finite[0] - width * (first - i) for i in range(first + 1)]
    for edge in edges[first + 1 :]:
        step = width if edge is None else edge - filled[-1]
        filled.append(filled[-1] + max(step, width * 1e-3))
    return filled


def _histogram_svg(name: str, dist: Mapping[str, Any]) -> str:
    """Both histograms as semi-transparent step areas over the same edges, current on top.

    With bins of unequal width (quantile bins), heights are densities (share per unit of x), so
    a bin's area, not its height, is its share; with equal widths heights are plain shares.
    """
    ref_raw, cur_raw = dist.get("reference"), dist.get("current")
    bins = len(ref_raw) if isinstance(ref_raw, list) else 0
    edges = _plot_edges(dist.get("edges"), bins)
    ref = _probabilities(ref_raw, bins)
    cur = _probabilities(cur_raw, bins)
    if edges is None or ref is None or cur is None:
        return _note_svg(name, "No histogram to plot: the distribution is empty or malformed.")
    widths = [b - a for a, b in itertools.pairwise(edges)]
    density = max(widths) > min(widths) * 1.01
    if density:
        ref = [p / w for p, w in zip(ref, widths, strict=True)]
        cur = [p / w for p, w in zip(cur, widths, strict=True)]
    height = 300
    x0, x1 = MARGIN_LEFT, PLOT_WIDTH - MARGIN_RIGHT
    y0, y1 = height - MARGIN_BOTTOM, MARGIN_TOP
    top = _axis_top(max(ref + cur))
    lo, hi = edges[0], edges[-1]

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (v - lo) / (hi - lo)

    def sy(v: float) -> float:
        return y0 - (y0 - y1) * v / top

    x_ticks = "".join(
        f'<line class="axis" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{y0}" y2="{y0 + 4}"/>'
        f'<text x="{sx(t):.1f}" y="{y0 + 16}" text-anchor="middle">{_tick(t)}</text>'
        for t in _ticks(lo, hi, 6)
    )
    series = "".join(
        _step_path(edges, values, color, sx, sy)
        for values, color in ((ref, REFERENCE_COLOR), (cur, CURRENT_COLOR))
    )
    return (
        f"{_svg_open(name, height)}"
        f"{_y_axis(top, x0, x1, y0, y1, density)}{series}"
        f'<line class="axis" x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}"/>{x_ticks}'
        f'<text class="axis-label" x="{(x0 + x1) / 2}" y="{height - 8}" text-anchor="middle">'
        f"{escape(_cut(name, 60))}</text>{_legend(x0 + 4, 18)}</svg>"
    )


def _axis_top(largest: float) -> float:
    """The top of the value axis: the next nice tick above the largest bar (1 if all are 0)."""
    if not largest > 0:
        return 1.0
    step = _nice_step(largest, 5)
    return math.ceil(largest / step - 1e-9) * step or step


def _step_path(
    edges: Sequence[float],
    values: Sequence[float],
    color: str,
    sx: Callable[[float], float],
    sy: Callable[[float], float],
) -> str:
    """One histogram as a closed step outline: a single path whatever the number of bins."""
    points = [f"M{sx(edges[0]):.1f},{sy(0):.1f}"]
    for left, right, value in zip(edges, edges[1:], values, strict=False):
        y = f"{sy(value):.1f}"
        points.append(f"L{sx(left):.1f},{y}L{sx(right):.1f},{y}")
    points.append(f"L{sx(edges[-1]):.1f},{sy(0):.1f}Z")
    return (
        f'<path d="{"".join(points)}" fill="{color}" fill-opacity="0.35" stroke="{color}" '
        'stroke-width="1.5" stroke-linejoin="round"/>'
    )


Folded = tuple[int, float, float]  # how many categories, their reference and current shares


def _top_categories(
    labels: Sequence[str], ref: Sequence[float], cur: Sequence[float]
) -> tuple[list[tuple[str, float, float]], Folded | None]:
    """The largest categories in the report's order, and the rest summed up.

    The rest is shown as text, not as a bar: in a long tail it can hold most of the rows, and a
    bar that long would squash the bars of the categories worth looking at.
    """
    rows = list(zip(labels, ref, cur, strict=True))
    if len(rows) <= TOP_CATEGORIES:
        return rows, None
    ranked = sorted(range(len(rows)), key=lambda i: -max(rows[i][1], rows[i][2]))
    keep = set(ranked[:TOP_CATEGORIES])
    folded = [row for i, row in enumerate(rows) if i not in keep]
    rest = (len(folded), sum(r[1] for r in folded), sum(r[2] for r in folded))
    return [row for i, row in enumerate(rows) if i in keep], rest


def _categories_svg(name: str, dist: Mapping[str, Any]) -> str:
    """Grouped horizontal bars, one pair per category: long labels stay readable on the left."""
    raw_labels = dist.get("categories")
    labels = [_text(c, "(null)") for c in raw_labels] if isinstance(raw_labels, list) else []
    ref = _probabilities(dist.get("reference"), len(labels))
    cur = _probabilities(dist.get("current"), len(labels))
    if not labels or ref is None or cur is None:
        return _note_svg(name, "No categories to plot: the distribution is empty or malformed.")
    rows, folded = _top_categories(labels, ref, cur)
    lines = len(rows) + (folded is not None)
    height = MARGIN_TOP + CATEGORY_ROW * lines + MARGIN_BOTTOM
    x0, x1 = CATEGORY_LABEL_WIDTH, PLOT_WIDTH - MARGIN_RIGHT - 30
    y0, y1 = MARGIN_TOP + CATEGORY_ROW * lines, MARGIN_TOP
    top = _axis_top(max(v for _, r, c in rows for v in (r, c)))
    step = _nice_step(top, 4)

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * v / top

    grid = "".join(
        f'<line class="grid" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{y1}" y2="{y0}"/>'
        f'<text x="{sx(t):.1f}" y="{y0 + 16}" text-anchor="middle">{_percent(t, step)}</text>'
        for t in _ticks(0.0, top, 4)
    )
    bars = "".join(
        _category_bars(label, r, c, MARGIN_TOP + CATEGORY_ROW * i, sx)
        for i, (label, r, c) in enumerate(rows)
    )
    rest = "" if folded is None else _folded_row(folded, MARGIN_TOP + CATEGORY_ROW * len(rows))
    return (
        f"{_svg_open(name, height)}{grid}{bars}{rest}"
        f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y1}" y2="{y0}"/>'
        f'<text class="axis-label" x="{(x0 + x1) / 2}" y="{height - 8}" text-anchor="middle">'
        f"share of rows · {escape(_cut(name, 48))}</text>{_legend(x0, 18)}</svg>"
    )


def _folded_row(folded: Folded, y: float) -> str:
    count, ref, cur = folded
    return (
        f'<text x="{CATEGORY_LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">'
        f"{count:,} more categories</text>"
        f'<text x="{CATEGORY_LABEL_WIDTH + 6}" y="{y + 17}">'
        f"together {_percent(ref, 0.001)} of reference rows, {_percent(cur, 0.001)} of current"
        "</text>"
    )


def _category_bars(
    label: str, ref: float, cur: float, y: float, sx: Callable[[float], float]
) -> str:
    """One category: its label, then the reference bar above the current one."""
    text = escape(_cut(label))
    bars = []
    for offset, value, color in ((4, ref, REFERENCE_COLOR), (13, cur, CURRENT_COLOR)):
        width = max(sx(value) - sx(0), 0.0)
        bars.append(
            f'<rect x="{sx(0):.1f}" y="{y + offset}" width="{width:.1f}" height="9" '
            f'fill="{color}" fill-opacity="0.75"/>'
        )
    share = f"{_percent(ref, 0.001)} → {_percent(cur, 0.001)}"
    return (
        f"<g><title>{escape(label)}: {share}</title>"
        f'<text x="{CATEGORY_LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">{text}</text>'
        f"{''.join(bars)}</g>"
    )


def _footer(report: Mapping[str, Any]) -> str:
    version = escape(_text(report.get("format_version"), "unknown"))
    return f"<footer>edgewise drift report · report format version {version}</footer>"
