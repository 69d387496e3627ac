"""A self-contained HTML report of an ``xlidx eval`` run.

:func:`render_report` turns the results of each mode (the :meth:`ModeReport.to_json` dicts,
i.e. the ``xlidx eval --json`` objects), and optionally a significance comparison of two runs
and the worst queries of each mode, into one HTML document. The page needs nothing but
itself: the CSS is inline, every chart is inline SVG drawn from the numbers, there is no
JavaScript, and a Content-Security-Policy ``<meta>`` forbids the browser any fetch; it opens
offline and makes no network request.

The page, in order (each part a ``<section>`` with this ``id``):

``settings``
    the run's settings (index, model, fusion, weights, k, queries file…), a ``<dl>``.
``modes``
    the metrics of each mode side by side: a grouped bar chart (one group per metric, one bar
    per mode, y axis 0..1; ``data-chart="modes"``) and a table (best value per metric in bold).
``comparison`` (only with :attr:`ReportData.comparison`)
    B - A per metric as bars left/right of a zero line, the significant ones solid and starred,
    with the p-values (``data-chart="comparison"``), and a table.
``languages``
    the metrics restricted to each document language: a table, and per mode a grouped bar chart
    (one group per document language; ``data-chart="languages-<mode>"``).
``share``
    per mode, two heatmaps with the same axes, query language (rows) x document language
    (columns): the share of the top-10 hits (``data-chart="share-<mode>"``) and that of the
    relevant documents (``data-chart="relevant-<mode>"``), white → blue, values printed.
``latency``
    p50, p95 and query encoding time per mode (ms): a bar chart (``data-chart="latency"``) and
    a table.
``worst``
    per mode, the worst queries: text, language, score, the top hits (relevant ones marked)
    and the relevant documents they missed.

and a ``<footer>`` with the generation time. ``<mode>`` in a chart name is the mode name with
characters other than letters, digits, ``_`` and ``-`` replaced by ``_`` (made unique).

Every piece of text that comes from the data is escaped with :func:`html.escape`. Missing or
non-finite numbers show as an en dash. The output is deterministic: the same data gives the same
string. The module does no I/O; the caller writes the returned string (UTF-8).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DASH = "\u2013"  # en dash: a missing number
MINUS = "\u2212"
ALPHA = "\u03b1"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D31", "#555555")
LATENCY_KEYS: tuple[tuple[str, str], ...] = (
    ("p50", "p50"),
    ("p95", "p95"),
    ("encode_per_query", "encode / query"),
)
BLUES: tuple[tuple[int, int, int], ...] = (  # the colour stops of the heatmaps, 0 to 1
    (255, 255, 255),
    (198, 219, 239),
    (107, 174, 214),
    (33, 113, 181),
    (8, 48, 107),
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
  background: #fff; max-width: 1120px; margin: 0 auto; padding: 1rem 1.5rem 2rem; }
h1 { font-size: 1.6rem; margin: .6rem 0 .2rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
h4 { font-size: .95rem; margin: 1rem 0 .3rem; }
nav a { margin-right: .9rem; color: #0b5394; }
.sub, figcaption, .note { color: #555; font-size: .88rem; }
.empty { color: #777; font-style: italic; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1.2rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .6rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: .22rem .55rem; text-align: right; vertical-align: top; }
th { background: #f5f6f8; }
th.l, td.l { text-align: left; overflow-wrap: anywhere; }
tr.rel td { background: #e7f4ea; }
td.sig { font-weight: 600; }
figure { margin: .4rem 0; }
.pair { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: system-ui, sans-serif; font-size: 11px; fill: #333; }
svg.chart text.small { font-size: 9.5px; }
svg.chart text.strong { font-weight: 600; }
svg.chart text.on-dark { fill: #fff; }
svg.chart text.muted { fill: #888; }
svg.chart .grid { stroke: #e4e4e4; }
svg.chart .axis { stroke: #666; }
.query { border: 1px solid #e2e2e2; border-radius: 4px; padding: .3rem .8rem .6rem;
  margin: .6rem 0; }
.qtext { font-size: 1rem; margin: .2rem 0 .4rem; white-space: pre-wrap; }
ul.missed { margin: .2rem 0; padding-left: 1.3rem; }
footer { margin-top: 3rem; padding-top: .5rem; border-top: 1px solid #ddd; color: #777;
  font-size: .85rem; }
"""


@dataclass(frozen=True)
class MissedQuery:
    """One of the worst queries of a mode."""

    qid: str
    text: str
    lang: str  # the query language
    score: float  # its nDCG@10 (or the report's main metric)
    hits: list[tuple[str, str, float, bool]]  # top hits: (doc id, doc lang, score, relevant?)
    missed: list[tuple[str, str]]  # relevant documents not in the top hits: (doc id, doc lang)


class WorstLike(Protocol):
    """What the page reads of a worst query: :class:`MissedQuery` (what
    ``xlidx.eval.harness.worst_queries`` gives), or any object with the same attributes."""

    @property
    def qid(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def lang(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def hits(self) -> Sequence[tuple[str, str, float, bool]]: ...
    @property
    def missed(self) -> Sequence[tuple[str, str]]: ...


@dataclass(frozen=True)
class ReportData:
    """What :func:`render_report` shows; ``modes`` are :meth:`ModeReport.to_json` dicts."""

    title: str
    settings: dict[str, Any]  # shown as a definition list, in this order
    modes: list[dict[str, Any]]  # in display order
    # mode -> its worst queries (MissedQuery, or anything shaped like it)
    worst: Mapping[str, Sequence[WorstLike]] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None  # {"a", "b", "test", "alpha", "queries", "metrics"}
    main_metric: str = "nDCG@10"
    generated_at: str = ""  # ISO time, shown in the footer


# ---------------------------------------------------------------------------- small helpers


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object) -> float | None:
    """``value`` as a finite float, else None (bools, strings, NaN and infinities are None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _fmt(value: object, digits: int = 4) -> str:
    x = _num(value)
    return DASH if x is None else f"{x:.{digits}f}"


def _signed(value: object) -> str:
    x = _num(value)
    return DASH if x is None else f"{x:+.4f}".replace("-", MINUS)


def _p(value: object) -> str:
    x = _num(value)
    if x is None:
        return DASH
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _c(x: float) -> str:
    """An SVG coordinate."""
    s = f"{x:.1f}"
    return "0.0" if s == "-0.0" else s


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_width(text: str, size: float = 11.0) -> float:
    return len(text) * size * 0.66


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


def _plain(value: object) -> str:
    """A setting's value as text (not yet escaped)."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(x, (str, int, float)) or x is None for x in value
    ):
        return ", ".join(_plain(x) for x in value) if value else DASH
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _mode_name(mode: Mapping[str, Any], i: int) -> str:
    return str(mode.get("mode") or f"mode {i + 1}")


def _mode_keys(names: Sequence[str]) -> list[str]:
    """A unique chart-name part per mode: the slug of its name, ``-2``… on a clash."""
    keys: list[str] = []
    for name in names:
        key, n = _slug(name), 1
        while key in keys:
            n += 1
            key = f"{_slug(name)}-{n}"
        keys.append(key)
    return keys


def _metric_names(modes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics of all modes, in the order first seen."""
    names: dict[str, None] = {}
    for m in modes:
        names.update(dict.fromkeys(str(k) for k in _dict(m.get("metrics"))))
    return list(names)


def _nice_max(value: float) -> float:
    """A round number ≥ ``value`` for an axis end (1 when there is nothing above 0)."""
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * step >= value * (1 - 1e-12):
            return m * step
    return 10.0 * step  # pragma: no cover


def _tick(value: float) -> str:
    return f"{value:.6g}"


def _blue(value: float) -> str:
    """White (0) through light blue to dark blue (1), piecewise linear over :data:`BLUES`."""
    t = min(max(value, 0.0), 1.0) * (len(BLUES) - 1)
    i = min(int(t), len(BLUES) - 2)
    lo, hi, f = BLUES[i], BLUES[i + 1], t - i
    r, g, b = (round(a + (z - a) * f) for a, z in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


# ---------------------------------------------------------------------------- SVG pieces


def _svg_open(name: str, width: float, height: float, title: str, cls: str = "chart") -> str:
    tid = f"chart-{_slug(name)}-title"
    return (
        f'<svg class="{cls}" data-chart="{_esc(name)}" role="img" aria-labelledby="{tid}" '
        f'width="{_c(width)}" height="{_c(height)}" viewBox="0 0 {_c(width)} {_c(height)}">'
        f'<title id="{tid}">{_esc(title)}</title>'
    )


def _text(
    x: float, y: float, text: str, anchor: str = "middle", cls: str = "", rot: bool = False
) -> str:
    klass = f' class="{cls}"' if cls else ""
    turn = f' transform="rotate(-90 {_c(x)} {_c(y)})"' if rot else ""
    return f'<text x="{_c(x)}" y="{_c(y)}" text-anchor="{anchor}"{klass}{turn}>{_esc(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, cls: str = "axis") -> str:
    return f'<line class="{cls}" x1="{_c(x1)}" y1="{_c(y1)}" x2="{_c(x2)}" y2="{_c(y2)}"/>'


def _legend(series: Sequence[str], x: float, y: float) -> tuple[str, float]:
    """Swatches with names in a row from (x, y); the SVG and the width it takes."""
    parts: list[str] = []
    for i, name in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{_c(x)}" y="{_c(y - 9)}" width="10" height="10" fill="{color}"/>'
            + _text(x + 14, y, name, "start")
        )
        x += 14 + _text_width(name) + 16
    return "".join(parts), x


def _y_axis(left: float, top: float, width: float, height: float, ymax: float, label: str) -> str:
    parts: list[str] = []
    for i in range(5):
        value = ymax * i / 4
        y = top + height - height * i / 4
        parts.append(_line(left, y, left + width, y, "grid"))
        parts.append(_text(left - 6, y + 4, _tick(value), "end"))
    parts.append(_line(left, top, left, top + height))
    parts.append(_line(left, top + height, left + width, top + height))
    if label:
        parts.append(_text(14, top + height / 2, label, "middle", rot=True))
    return "".join(parts)


def _bar(
    x: float, base: float, width: float, height: float, color: str, value: float, tip: str
) -> str:
    return (
        f'<rect class="bar" x="{_c(x)}" y="{_c(base - height)}" width="{_c(width)}" '
        f'height="{_c(height)}" fill="{color}" data-value="{value!r}">'
        f"<title>{_esc(tip)}</title></rect>"
    )


# ---------------------------------------------------------------------------- charts


def grouped_bar_chart(
    name: str,
    title: str,
    groups: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    ymax: float | None = 1.0,
    y_label: str = "",
    x_label: str = "",
    digits: int = 2,
) -> str:
    """A grouped bar chart: ``values[group][series]``, one colour per series, with a legend,
    value labels and a y axis from 0 to ``ymax`` (None: a round number above the data)."""
    bar, pad, gap, left, top, plot_h = 22.0, 2.0, 28.0, 62.0, 66.0, 200.0
    group_w = max(len(series), 1) * (bar + pad) - pad
    plot_w = max(len(groups) * (group_w + gap), 220.0)
    legend, legend_end = _legend(series, left, 22)
    width = max(left + plot_w + 16, legend_end + 8)
    height = top + plot_h + 44
    found = [v for row in values for x in row if (v := _num(x)) is not None]
    top_value = ymax if ymax is not None else _nice_max(max(found, default=0.0))
    base = top + plot_h
    parts = [
        _svg_open(name, width, height, title),
        legend,
        _y_axis(left, top, plot_w, plot_h, top_value, y_label),
    ]
    for gi, group in enumerate(groups):
        x0 = left + gi * (group_w + gap) + gap / 2
        parts.append(_text(x0 + group_w / 2, base + 16, _short(group, 18), cls="strong"))
        row = values[gi] if gi < len(values) else []
        for si, label in enumerate(series):
            x = x0 + si * (bar + pad)
            v = _num(row[si]) if si < len(row) else None
            if v is None:
                parts.append(_text(x + bar / 2, base - 4, "n/a", cls="small muted"))
                continue
            h = plot_h * min(max(v, 0.0), top_value) / top_value
            tip = f"{label} · {group}: {v:.{digits}f}"
            parts.append(_bar(x, base, bar, h, PALETTE[si % len(PALETTE)], v, tip))
            parts.append(
                _text(x + bar / 2 + 3, base - h - 4, f"{v:.{digits}f}", "start", "small", True)
            )
    if x_label:
        parts.append(_text(left + plot_w / 2, base + 36, x_label, cls="small"))
    parts.append("</svg>")
    return "".join(parts)


def _comparison_rows(
    comp: Mapping[str, Any],
) -> list[tuple[str, float | None, float | None, bool]]:
    """(metric, B - A, p-value, significant?) per metric of a comparison."""
    alpha = _num(comp.get("alpha"))
    rows: list[tuple[str, float | None, float | None, bool]] = []
    for metric, raw in _dict(comp.get("metrics")).items():
        v = _dict(raw)
        diff = _num(v.get("diff"))
        a, b = _num(v.get("a")), _num(v.get("b"))
        if diff is None and a is not None and b is not None:
            diff = b - a
        p = _num(v.get("p_value"))
        sig = v.get("significant")
        if not isinstance(sig, bool):
            sig = p is not None and alpha is not None and p < alpha
        rows.append((str(metric), diff, p, sig))
    return rows


def comparison_chart(comp: Mapping[str, Any]) -> str:
    """B - A per metric: bars right (B higher) or left (A higher) of a zero line; significant
    differences solid and starred, the others pale; each with its difference and p-value."""
    rows = _comparison_rows(comp)
    label_w, half, text_w, row_h, top = 100.0, 190.0, 190.0, 30.0, 56.0
    zero = label_w + half
    width = label_w + 2 * half + text_w
    height = top + max(len(rows), 1) * row_h + 34
    scale = _nice_max(max((abs(d) for _, d, _, _ in rows if d is not None), default=0.0))
    a = _short(str(comp.get("a", "A")))
    b = _short(str(comp.get("b", "B")))
    alpha = _num(comp.get("alpha"))
    title = f"Difference B {MINUS} A per metric (A: {comp.get('a', 'A')}, B: {comp.get('b', 'B')})"
    bottom = top + len(rows) * row_h
    parts = [
        _svg_open("comparison", width, height, title),
        _text(zero - 6, 20, f"← {a} higher", "end", "strong"),
        _text(zero + 6, 20, f"{b} higher →", "start", "strong"),
        _text(zero + half + 10, 20, f"B {MINUS} A, p-value", "start"),
        _text(
            zero + half + 10, 36, f"* significant ({ALPHA} = {_fmt(alpha, 2)})", "start", "small"
        ),
    ]
    for frac in (-1.0, -0.5, 0.5, 1.0):
        x = zero + frac * half
        parts.append(_line(x, top - 6, x, bottom, "grid"))
        parts.append(_text(x, bottom + 16, f"{frac * scale:+.3g}".replace("-", MINUS), cls="small"))
    parts.append(_text(zero, bottom + 16, "0", cls="small"))
    for i, (metric, diff, p, sig) in enumerate(rows):
        y = top + i * row_h
        parts.append(_text(label_w - 8, y + row_h / 2 + 4, _short(metric, 14), "end", "strong"))
        star = " *" if sig else ""
        if diff is not None:
            w = half * min(abs(diff), scale) / scale
            x = zero if diff >= 0 else zero - w
            color = "#0072B2" if diff >= 0 else "#D55E00"
            opacity = "1" if sig else "0.35"
            tip = (
                f"{metric}: B {MINUS} A = {diff:+.4f}, p = {_p(p)}{' (significant)' if sig else ''}"
            )
            parts.append(
                f'<rect class="bar" x="{_c(x)}" y="{_c(y + 6)}" width="{_c(w)}" '
                f'height="{_c(row_h - 12)}" fill="{color}" fill-opacity="{opacity}" '
                f'stroke="{color}" data-value="{diff!r}"><title>{_esc(tip)}</title></rect>'
            )
        text = f"{_signed(diff)} · p = {_p(p)}{star}"
        parts.append(
            _text(zero + half + 10, y + row_h / 2 + 4, text, "start", "strong" if sig else "")
        )
    parts.append(_line(zero, top - 10, zero, bottom + 4))
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    name: str,
    title: str,
    rows: Sequence[str],
    cols: Sequence[str],
    cells: Mapping[str, Mapping[str, Any]],
    row_notes: Mapping[str, str] | None = None,
) -> str:
    """Rows x columns of values in 0..1, white → blue, each value printed. A row with no values
    at all, or a value that is not a number, is grey with a dash; a value missing from a row
    that has some is 0."""
    cell_w, cell_h, left, top = 52.0, 30.0, 96.0, 58.0
    width = left + max(len(cols), 1) * cell_w + 16
    height = top + max(len(rows), 1) * cell_h + 46
    parts = [
        _svg_open(name, width, height, title, "chart heatmap"),
        _text(left + len(cols) * cell_w / 2, 16, "document language →"),
        _text(14, top + len(rows) * cell_h / 2, "query language", rot=True),
    ]
    for ci, col in enumerate(cols):
        parts.append(_text(left + ci * cell_w + cell_w / 2, top - 8, _short(col, 8), cls="strong"))
    for ri, row in enumerate(rows):
        y = top + ri * cell_h
        label = _short(row, 8) + (f" {row_notes[row]}" if row_notes and row in row_notes else "")
        parts.append(_text(left - 8, y + cell_h / 2 + 4, label, "end", "strong"))
        values = _dict(cells.get(row))
        for ci, col in enumerate(cols):
            parts.append(_cell(left + ci * cell_w, y, cell_w, cell_h, row, col, values))
    parts.append(_scale_legend(left, top + len(rows) * cell_h + 14))
    parts.append("</svg>")
    return "".join(parts)


def _cell(
    x: float, y: float, w: float, h: float, row: str, col: str, values: Mapping[str, Any]
) -> str:
    attrs = f'x="{_c(x)}" y="{_c(y)}" width="{_c(w)}" height="{_c(h)}" stroke="#fff"'
    keys = f'data-row="{_esc(row)}" data-col="{_esc(col)}"'
    v = _num(values.get(col, 0.0))
    if v is None or not values:
        tip = f"query language {row}, document language {col}: no data"
        return (
            f'<rect class="cell" {attrs} {keys} fill="#f1f1f1"><title>{_esc(tip)}</title></rect>'
            + _text(x + w / 2, y + h / 2 + 4, DASH, cls="muted")
        )
    tip = f"query language {row}, document language {col}: {v:.4f}"
    cls = "on-dark" if v > 0.6 else ""
    return (
        f'<rect class="cell" {attrs} {keys} data-value="{v!r}" fill="{_blue(v)}">'
        f"<title>{_esc(tip)}</title></rect>" + _text(x + w / 2, y + h / 2 + 4, f"{v:.2f}", cls=cls)
    )


def _scale_legend(x: float, y: float) -> str:
    parts = [_text(x - 8, y + 11, "scale", "end", "small")]
    for i in range(5):
        v = i / 4
        parts.append(
            f'<rect x="{_c(x + i * 30)}" y="{_c(y)}" width="30" height="14" fill="{_blue(v)}" '
            f'stroke="#ccc"/>' + _text(x + i * 30 + 15, y + 26, f"{v:g}", cls="small")
        )
    return "".join(parts)


def latency_chart(modes: Sequence[Mapping[str, Any]]) -> str:
    """p50, p95 and encoding time per query (ms), one group per mode."""
    names = [_mode_name(m, i) for i, m in enumerate(modes)]
    values = [[_num(_dict(m.get("latency_ms")).get(key)) for key, _ in LATENCY_KEYS] for m in modes]
    series = [label for _, label in LATENCY_KEYS]
    title = "Latency per mode (ms): p50 and p95 search time, query encoding time per query"
    return grouped_bar_chart(
        "latency", title, names, series, values, ymax=None, y_label="ms", x_label="mode", digits=1
    )


# ---------------------------------------------------------------------------- HTML pieces


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, cls: str = "") -> str:
    """A table; cells are HTML already; the first ``left`` columns align left."""

    def cell(tag: str, i: int, content: str) -> str:
        return f'<{tag} class="l">{content}</{tag}>' if i < left else f"<{tag}>{content}</{tag}>"

    klass = f' class="{cls}"' if cls else ""
    head_html = "".join(cell("th", i, _esc(h)) for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table{klass}><thead><tr>{head_html}</tr></thead><tbody>{body}</tbody></table>"


def _section(sid: str, heading: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_esc(heading)}</h2>{body}</section>'


def _empty(text: str) -> str:
    return f'<p class="empty">{_esc(text)}</p>'


def settings_section(settings: Mapping[str, Any]) -> str:
    if not settings:
        return _section("settings", "Settings", _empty("No settings given."))
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(_plain(v))}</dd>" for k, v in settings.items())
    return _section("settings", "Settings", f"<dl>{items}</dl>")


def _fusion_text(fusion: object) -> str:
    f = _dict(fusion)
    return "; ".join(f"{k}: {_plain(v)}" for k, v in f.items()) if f else DASH


def _best(modes: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    found = [v for m in modes if (v := _num(_dict(m.get("metrics")).get(metric))) is not None]
    return max(found) if len(found) > 1 else None


def modes_table(modes: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str:
    best = {metric: _best(modes, metric) for metric in metrics}
    rows: list[list[str]] = []
    for i, m in enumerate(modes):
        values = _dict(m.get("metrics"))
        cells = []
        for metric in metrics:
            v = _num(values.get(metric))
            text = _fmt(v)
            cells.append(
                f"<strong>{text}</strong>" if v is not None and v == best[metric] else text
            )
        evaluated = f"{_esc(_plain(m.get('evaluated')))}/{_esc(_plain(m.get('queries')))}"
        p50 = _fmt(_dict(m.get("latency_ms")).get("p50"), 1)
        extra = [_esc(_fusion_text(m.get("fusion"))), _esc(_plain(m.get("run_file")))]
        rows.append([_esc(_mode_name(m, i)), *cells, evaluated, p50, *extra])
    head = ["mode", *metrics, "evaluated/queries", "p50 ms", "fusion", "run file"]
    return _table(head, rows) + '<p class="note">Bold: the best mode on that metric.</p>'


def modes_section(modes: Sequence[Mapping[str, Any]]) -> str:
    if not modes:
        return _section("modes", "Metrics per mode", _empty("No mode was evaluated."))
    metrics = _metric_names(modes)
    if not metrics:
        return _section("modes", "Metrics per mode", _empty("No metric was computed."))
    names = [_mode_name(m, i) for i, m in enumerate(modes)]
    values = [[_num(_dict(m.get("metrics")).get(metric)) for m in modes] for metric in metrics]
    title = "Metrics per mode (mean over the evaluated queries, 0 to 1)"
    chart = grouped_bar_chart(
        "modes", title, metrics, names, values, y_label="score", x_label="metric"
    )
    return _section("modes", "Metrics per mode", chart + modes_table(modes, metrics))


def comparison_table(comp: Mapping[str, Any]) -> str:
    metrics = _dict(comp.get("metrics"))
    rows: list[list[str]] = []
    for metric, diff, p, sig in _comparison_rows(comp):
        v = _dict(metrics.get(metric))
        rows.append(
            [
                _esc(metric),
                _fmt(v.get("a")),
                _fmt(v.get("b")),
                _signed(diff),
                _esc(_p(p)),
                '<span class="sig">yes</span>' if sig else "no",
            ]
        )
    return _table(["metric", "A", "B", f"B {MINUS} A", "p-value", "significant"], rows)


def comparison_section(comp: Mapping[str, Any]) -> str:
    a, b = comp.get("a", "A"), comp.get("b", "B")
    facts = (
        f'<p class="sub">A: <strong>{_esc(a)}</strong> · B: <strong>{_esc(b)}</strong> · '
        f"test: {_esc(_plain(comp.get('test')))} · {ALPHA} = {_esc(_plain(comp.get('alpha')))} · "
        f"queries: {_esc(_plain(comp.get('queries')))}</p>"
    )
    if not _dict(comp.get("metrics")):
        return _section("comparison", "Comparison", facts + _empty("No metric compared."))
    body = facts + comparison_chart(comp) + comparison_table(comp)
    return _section("comparison", "Comparison", body)


def _language_chart(mode: Mapping[str, Any], name: str, key: str, metrics: Sequence[str]) -> str:
    per = _dict(mode.get("per_language"))
    langs = list(per)
    values = [[_num(_dict(_dict(per[lg]).get("metrics")).get(m)) for m in metrics] for lg in langs]
    title = f"{name}: metrics by document language (relevant documents of that language only)"
    return grouped_bar_chart(
        f"languages-{key}",
        title,
        langs,
        metrics,
        values,
        y_label="score",
        x_label="document language",
    )


def languages_section(modes: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    metrics = _metric_names(
        [
            {"metrics": _dict(v).get("metrics")}
            for m in modes
            for v in _dict(m.get("per_language")).values()
        ]
    )
    rows: list[list[str]] = []
    charts: list[str] = []
    for i, m in enumerate(modes):
        per = _dict(m.get("per_language"))
        name = _mode_name(m, i)
        for lang, raw in per.items():
            v = _dict(raw)
            cells = [_fmt(_dict(v.get("metrics")).get(metric)) for metric in metrics]
            rows.append([_esc(name), _esc(lang), _esc(_plain(v.get("queries"))), *cells])
        if per:
            charts.append(f"<h3>{_esc(name)}</h3>" + _language_chart(m, name, keys[i], metrics))
    if not rows:
        return _section("languages", "By document language", _empty("No per-language metrics."))
    note = (
        '<p class="note">Each document language: the qrels cut down to the relevant documents in '
        "that language (queries without one left out), over the unchanged run.</p>"
    )
    table = _table(["mode", "doc lang", "queries", *metrics], rows, left=2)
    return _section("languages", "By document language", note + table + "".join(charts))


def _share_axes(share: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    rows = sorted(str(k) for k in share)
    cols: set[str] = set()
    for v in share.values():
        cols.update(str(k) for k in _dict(_dict(v).get("hits")))
        cols.update(str(k) for k in _dict(_dict(v).get("relevant")))
    return rows, sorted(cols)


def share_block(mode: Mapping[str, Any], name: str, key: str) -> str:
    """The two heatmaps of one mode: top-k share and relevant share."""
    share = _dict(mode.get("language_share"))
    if not share:
        return f"<h3>{_esc(name)}</h3>" + _empty("No language share for this mode.")
    rows, cols = _share_axes(share)
    depth = _plain(_dict(next(iter(share.values()))).get("depth", 10))
    hits = {r: _dict(_dict(share[r]).get("hits")) for r in rows}
    relevant = {r: _dict(_dict(share[r]).get("relevant")) for r in rows}
    notes = {r: f"({_plain(_dict(share[r]).get('queries', DASH))})" for r in rows}
    t_hits = f"{name}: share of the top-{depth} hits by document language, per query language"
    t_rel = f"{name}: share of the relevant documents by document language, per query language"
    return (
        f'<h3>{_esc(name)}</h3><div class="pair">'
        f"<figure>{heatmap(f'share-{key}', t_hits, rows, cols, hits, notes)}"
        f"<figcaption>Top-{_esc(depth)} hits (row: query language, number of queries)."
        "</figcaption></figure>"
        f"<figure>{heatmap(f'relevant-{key}', t_rel, rows, cols, relevant, notes)}"
        "<figcaption>Relevant documents (what a language-neutral retriever would show)."
        "</figcaption></figure></div>"
    )


def share_section(modes: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    if not modes:
        return _section("share", "Language share", _empty("No mode was evaluated."))
    note = (
        '<p class="note">Each row sums to 1. A retriever that prefers a language gives it a '
        "larger share of its hits (left) than of the relevant documents (right).</p>"
    )
    blocks = "".join(share_block(m, _mode_name(m, i), keys[i]) for i, m in enumerate(modes))
    return _section("share", "Language share", note + blocks)


def latency_section(modes: Sequence[Mapping[str, Any]]) -> str:
    if not modes:
        return _section("latency", "Latency", _empty("No mode was evaluated."))
    rows = [
        [_esc(_mode_name(m, i))]
        + [_fmt(_dict(m.get("latency_ms")).get(key), 1) for key, _ in LATENCY_KEYS]
        for i, m in enumerate(modes)
    ]
    head = ["mode", *(f"{label} (ms)" for _, label in LATENCY_KEYS)]
    return _section("latency", "Latency", latency_chart(modes) + _table(head, rows))


def _hits_table(hits: Sequence[tuple[str, str, float, bool]]) -> str:
    if not hits:
        return _empty("No hits.")
    rows = []
    for rank, (doc_id, lang, score, rel) in enumerate(hits, start=1):
        klass = ' class="rel"' if rel else ""
        mark = "✓ relevant" if rel else ""
        rows.append(
            f'<tr{klass}><td>{rank}</td><td class="l">{_esc(doc_id)}</td>'
            f'<td class="l">{_esc(lang)}</td><td>{_fmt(score)}</td><td class="l">{mark}</td></tr>'
        )
    head = (
        '<tr><th>#</th><th class="l">document</th><th class="l">lang</th><th>score</th>'
        '<th class="l">relevant</th></tr>'
    )
    return f'<table class="hits"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _missed_list(missed: Sequence[tuple[str, str]]) -> str:
    if not missed:
        return '<p class="note">Missed relevant documents: none.</p>'
    items = "".join(f"<li>{_esc(doc_id)} ({_esc(lang)})</li>" for doc_id, lang in missed)
    return f'<p class="note">Missed relevant documents:</p><ul class="missed">{items}</ul>'


def worst_query(q: WorstLike, main_metric: str) -> str:
    head = (
        f"<h4>{_esc(q.qid)} · {_esc(q.lang)} · {_esc(main_metric)} {_fmt(q.score)}</h4>"
        f'<p class="qtext">{_esc(q.text)}</p>'
    )
    return f'<div class="query">{head}{_hits_table(q.hits)}{_missed_list(q.missed)}</div>'


def worst_section(
    worst: Mapping[str, Sequence[WorstLike]], names: Sequence[str], main_metric: str
) -> str:
    order = [n for n in dict.fromkeys(names) if n in worst]
    order += [n for n in worst if n not in order]
    blocks = []
    for name in order:
        queries = worst[name]
        body = "".join(worst_query(q, main_metric) for q in queries)
        blocks.append(f"<h3>{_esc(name)}</h3>" + (body or _empty("No query listed.")))
    if not blocks:
        return _section("worst", "Worst queries", _empty("No worst queries given."))
    note = (
        f'<p class="note">The lowest {_esc(main_metric)} per mode; relevant hits are marked, '
        "then the relevant documents the top hits missed.</p>"
    )
    return _section("worst", "Worst queries", note + "".join(blocks))


def _nav(has_comparison: bool) -> str:
    items = [
        ("settings", "Settings"),
        ("modes", "Metrics"),
        *([("comparison", "Comparison")] if has_comparison else []),
        ("languages", "Languages"),
        ("share", "Language share"),
        ("latency", "Latency"),
        ("worst", "Worst queries"),
    ]
    return "<nav>" + "".join(f'<a href="#{sid}">{label}</a>' for sid, label in items) + "</nav>"


def render_report(data: ReportData) -> str:
    """The whole HTML document (UTF-8 text) for ``data``."""
    modes = [_dict(m) for m in data.modes]
    names = [_mode_name(m, i) for i, m in enumerate(modes)]
    keys = _mode_keys(names)
    sections = [
        settings_section(data.settings),
        modes_section(modes),
        comparison_section(data.comparison) if data.comparison is not None else "",
        languages_section(modes, keys),
        share_section(modes, keys),
        latency_section(modes),
        worst_section(data.worst, names, data.main_metric),
    ]
    sub = f"{len(modes)} mode{'' if len(modes) == 1 else 's'}: {', '.join(names) or DASH}"
    sub += f" · main metric {data.main_metric}"
    generated = f"Generated {data.generated_at} by xlidx." if data.generated_at else "By xlidx."
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(data.title)}</title><style>{CSS}</style></head>\n<body>"
        f'<header><h1>{_esc(data.title)}</h1><p class="sub">{_esc(sub)}</p>'
        f"{_nav(data.comparison is not None)}</header>\n<main>"
        + "\n".join(s for s in sections if s)
        + f"</main>\n<footer>{_esc(generated)}</footer>\n</body></html>\n"
    )
