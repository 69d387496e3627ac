"""The HTML evaluation report: well-formed, self-contained, escaped, charts drawn from the data."""

from __future__ import annotations

import ast
import math
import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from xlidx.eval import report as report_module
from xlidx.eval.report import MissedQuery, ReportData, render_report

LANGS = ("de", "en", "fr")
MODES = ("hybrid", "bm25", "knn")
SCRIPT = "<script>alert(1)</script>"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


def mode_json(mode: str, base: float) -> dict[str, Any]:
    """A mode as ``ModeReport.to_json()`` gives it."""
    metrics = {"nDCG@10": base, "RR@10": base - 0.05, "R@1": base - 0.2, "R@100": base + 0.2}
    return {
        "mode": mode,
        "metrics": metrics,
        "per_language": {
            lang: {
                "queries": 40 - i,
                "metrics": {k: round(v - 0.03 * i, 4) for k, v in metrics.items()},
            }
            for i, lang in enumerate(LANGS)
        },
        "language_share": {
            "de": {
                "queries": 40,
                "depth": 10,
                "hits": {"de": 0.1, "en": 0.7, "fr": 0.2},
                "relevant": {"en": 0.5, "fr": 0.5},
            },
            "en": {
                "queries": 45,
                "depth": 10,
                "hits": {"en": 0.9, "fr": 0.1},
                "relevant": {"de": 1.0},
            },
            "fr": {
                "queries": 35,
                "depth": 10,
                "hits": {"de": 0.3333, "en": 0.3334, "fr": 0.3333},
                "relevant": {"de": 0.25, "en": 0.75},
            },
        },
        "queries": 120,
        "evaluated": 118,
        "latency_ms": {
            "p50": 9.1 + base,
            "p95": 14.0 + base,
            "encode_per_query": 0.0 if mode == "bm25" else 8.7,
        },
        "run_file": f"runs/x.{mode}.trec",
        **(
            {
                "fusion": {
                    "method": "minmax",
                    "balance": False,
                    "weights": [[0.3, 0.7]],
                    "fused_on": ["client"],
                }
            }
            if mode == "hybrid"
            else {}
        ),
    }


def sample() -> ReportData:
    worst = {
        "hybrid": [
            MissedQuery(
                qid="q17",
                text=SCRIPT,
                lang="de",
                score=0.0,
                hits=[("d1", "en", 12.5, False), ("d2", "fr", 11.0, True)],
                missed=[("d9", "de"), ("d<10>", "en")],
            ),
            MissedQuery(
                qid="q3",
                text="Wie hoch ist der Eiffelturm?",
                lang="de",
                score=0.1234,
                hits=[("d5", "fr", 3.0, False)],
                missed=[],
            ),
        ],
        "bm25": [MissedQuery("q8", "tour eiffel hauteur", "fr", 0.05, [], [("d4", "en")])],
    }
    comparison = {
        "a": "bm25 <baseline>",
        "b": 'hybrid "balanced"',
        "test": "student",
        "alpha": 0.05,
        "queries": 120,
        "metrics": {
            "nDCG@10": {"a": 0.61, "b": 0.58, "diff": -0.03, "p_value": 0.012, "significant": True},
            "RR@10": {"a": 0.5, "b": 0.56, "diff": 0.06, "p_value": 0.2, "significant": False},
            "R@1": {"a": 0.4, "b": 0.41, "diff": 0.01, "p_value": math.nan, "significant": False},
            "R@100": {"a": 0.9, "b": 0.9, "diff": 0.0, "p_value": 1.0, "significant": False},
        },
    }
    return ReportData(
        title="xlidx eval: wiki-x <test>",
        settings={
            "index": "wiki-x",
            "index version": 3,
            "model": "intfloat/multilingual-e5-small",
            "fusion": "minmax",
            "weights": [0.3, 0.7],
            "k": 100,
            "queries file": "data/q<&>.tsv",
            "translate": False,
            "extra": {"nested": [1, 2]},
        },
        modes=[mode_json(m, b) for m, b in zip(MODES, (0.62, 0.55, 0.48), strict=True)],
        worst=worst,
        comparison=comparison,
        generated_at="2024-05-01T12:00:00+00:00",
    )


class Checker(HTMLParser):
    """Collects errors (unbalanced tags) and the attributes of every start tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[tuple[list[str], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append((list(self.stack), data))


def parse(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def charts(page: str) -> list[str]:
    return [a["data-chart"] or "" for t, a in parse(page).tags if t == "svg" and "data-chart" in a]


def svg_of(page: str, name: str) -> str:
    match = re.search(rf'<svg[^>]*data-chart="{re.escape(name)}".*?</svg>', page, re.S)
    assert match is not None, name
    return match.group(0)


def cell_values(svg: str) -> dict[tuple[str, str], float]:
    checker = parse(svg)
    return {
        (a["data-row"] or "", a["data-col"] or ""): float(a["data-value"] or "nan")
        for t, a in checker.tags
        if t == "rect" and a.get("class") == "cell" and "data-value" in a
    }


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(sample())


def test_well_formed_html_document(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    checker = parse(page)
    assert [t for t, _ in checker.tags][:2] == ["html", "head"]
    assert page.count("<footer>") == 1
    assert "Generated 2024-05-01T12:00:00+00:00 by xlidx." in page


def test_sections_in_order(page: str) -> None:
    ids = [a["id"] for t, a in parse(page).tags if t == "section"]
    assert ids == ["settings", "modes", "comparison", "languages", "share", "latency", "worst"]
    assert page.index("<footer>") > page.index('id="worst"')


def test_every_chart_is_an_svg(page: str) -> None:
    names = charts(page)
    expected = ["modes", "comparison", "latency"]
    expected += [f"languages-{m}" for m in MODES]
    expected += [f"{kind}-{m}" for m in MODES for kind in ("share", "relevant")]
    assert sorted(names) == sorted(expected)
    for name in expected:
        svg = svg_of(page, name)
        assert 'class="chart' in svg
        assert re.search(r"<title[^>]*>[^<]+</title>", svg), name  # an accessible name
    assert page.count('class="chart heatmap"') == 2 * len(MODES)


def test_self_contained(page: str) -> None:
    lowered = page.lower()
    for pattern in (r"src\s*=", r"href\s*=", r"url\(", r"@import"):
        for m in re.finditer(pattern, lowered):
            assert not re.match(r"\s*[\"']?\s*(https?:)?//", lowered[m.end() : m.end() + 20])
    rest = lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in rest
    assert "https://" not in rest
    for tag in ("<script", "<link", "<img", "<iframe", "<object", "<embed"):
        assert tag not in lowered
    hrefs = [a["href"] or "" for t, a in parse(page).tags if "href" in a]
    assert hrefs
    assert all(h.startswith("#") for h in hrefs)
    assert "Content-Security-Policy" in page


def test_user_text_is_escaped(page: str) -> None:
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<test>" not in page
    assert "wiki-x &lt;test&gt;" in page
    assert "data/q&lt;&amp;&gt;.tsv" in page
    assert "d&lt;10&gt;" in page
    assert "bm25 &lt;baseline&gt;" in page
    assert "hybrid &quot;balanced&quot;" in page


def test_heatmap_cells_match_the_input(page: str) -> None:
    data = sample()
    for mode in data.modes:
        share = mode["language_share"]
        for kind, field in (("share", "hits"), ("relevant", "relevant")):
            svg = svg_of(page, f"{kind}-{mode['mode']}")
            cells = cell_values(svg)
            assert {r for r, _ in cells} == set(LANGS)  # every language on both axes, sorted
            assert {c for _, c in cells} == set(LANGS)
            for (row, col), value in cells.items():
                assert value == share[row][field].get(col, 0.0)
            printed = [
                text for stack, text in parse(svg).text if stack[-1:] == ["text"] and "." in text
            ]
            for row in LANGS:
                for col in LANGS:
                    assert f"{share[row][field].get(col, 0.0):.2f}" in printed
    svg = svg_of(page, "share-hybrid")
    cols = [m.group(1) for m in re.finditer(r'data-row="de" data-col="(\w+)"', svg)]
    assert cols == sorted(LANGS)
    assert re.search(r'data-row="en" data-col="en" data-value="0.9" fill="#([0-9a-f]{6})"', svg)
    zero = re.search(r'data-row="en" data-col="de" data-value="0.0" fill="(#[0-9a-f]{6})"', svg)
    assert zero is not None
    assert zero.group(1) == "#ffffff"


def test_mode_bars_carry_the_metric_values(page: str) -> None:
    svg = svg_of(page, "modes")
    values = [
        float(a["data-value"] or "nan")
        for t, a in parse(svg).tags
        if t == "rect" and a.get("class") == "bar"
    ]
    data = sample()
    metrics = list(data.modes[0]["metrics"])
    assert values == [m["metrics"][k] for k in metrics for m in data.modes]
    for mode in MODES:
        assert f">{mode}</text>" in svg  # the legend
    assert ">1</text>" in svg  # the y axis ends at 1
    assert ">0.62</text>" in svg  # a value label


def test_comparison_chart_and_table(page: str) -> None:
    svg = svg_of(page, "comparison")
    bars = [
        (a["fill-opacity"], float(a["data-value"] or "nan"))
        for t, a in parse(svg).tags
        if t == "rect"
    ]
    assert bars == [("1", -0.03), ("0.35", 0.06), ("0.35", 0.01), ("0.35", 0.0)]
    assert "p = 0.012 *" in svg
    assert "p = \u2013" in svg  # NaN p-value
    section = page[page.index('id="comparison"') : page.index('id="languages"')]
    assert "<td>\u2013</td>" in section
    assert '<span class="sig">yes</span>' in section
    assert section.count("<tr>") == 1 + 4


def test_worst_queries(page: str) -> None:
    section = page[page.index('id="worst"') :]
    assert section.index(">hybrid</h3>") < section.index(">bm25</h3>")
    assert "knn</h3>" not in section
    assert section.count('<tr class="rel">') == 1
    assert "✓ relevant" in section
    assert "<li>d9 (de)</li>" in section
    assert "Missed relevant documents: none." in section
    assert "No hits." in section
    assert "nDCG@10 0.1234" in section


def test_deterministic() -> None:
    assert render_report(sample()) == render_report(sample())


def edge_cases() -> dict[str, ReportData]:
    one = mode_json("hybrid", 0.5)
    bare = {
        "mode": "knn",
        "metrics": {},
        "per_language": {},
        "language_share": {},
        "latency_ms": {},
    }
    zero = dict(
        mode_json("bm25", 0.5), latency_ms={"p50": 0.0, "p95": 0.0, "encode_per_query": 0.0}
    )
    partial = dict(mode_json("knn", 0.4), metrics={"nDCG@10": 0.4, "R@1": math.nan})
    no_hits = dict(
        mode_json("odd <mode>", 0.3),
        language_share={"en": {"queries": 3, "depth": 10, "hits": {}, "relevant": {"en": 1.0}}},
    )
    comparison: dict[str, Any] = {
        "a": "x",
        "b": "y",
        "metrics": {
            "nDCG@10": {"a": 0.5, "b": 0.5, "diff": 0.0, "p_value": math.nan},
            "R@1": {"a": None, "b": math.inf, "p_value": None},
        },
    }
    return {
        "nothing": ReportData(title="", settings={}, modes=[]),
        "one mode": ReportData(title="t", settings={"k": 10}, modes=[one]),
        "bare mode": ReportData(title="t", settings={}, modes=[bare]),
        "zero latency": ReportData(title="t", settings={}, modes=[zero]),
        "missing metrics": ReportData(title="t", settings={}, modes=[one, partial, bare]),
        "row without hits": ReportData(title="t", settings={}, modes=[no_hits, no_hits]),
        "nan comparison": ReportData(title="t", settings={}, modes=[one], comparison=comparison),
        "empty comparison": ReportData(title="t", settings={}, modes=[one], comparison={}),
        "empty worst": ReportData(title="t", settings={}, modes=[one], worst={"hybrid": []}),
    }


@pytest.mark.parametrize("name", list(edge_cases()))
def test_edge_cases_render(name: str) -> None:
    page = render_report(edge_cases()[name])
    parse(page)
    ids = [a["id"] for t, a in parse(page).tags if t == "section"]
    assert ids[:2] == ["settings", "modes"]
    assert ids[-4:] == ["languages", "share", "latency", "worst"]
    assert "nan" not in page.lower().replace("nanos", "")
    assert "inf<" not in page


def test_edge_case_details() -> None:
    cases = edge_cases()
    assert charts(render_report(cases["nothing"])) == []
    assert "No mode was evaluated." in render_report(cases["nothing"])
    bare = render_report(cases["bare mode"])
    assert charts(bare) == ["latency"]
    assert "No metric was computed." in bare
    assert "No language share for this mode." in bare
    assert "No per-language metrics." in bare
    zero = render_report(cases["zero latency"])
    assert ">1</text>" in svg_of(zero, "latency")  # an axis even when everything is 0
    missing = render_report(cases["missing metrics"])
    modes_svg = svg_of(missing, "modes")
    assert ">n/a</text>" in modes_svg
    assert modes_svg.count('class="bar"') == 4 + 1  # hybrid's four, knn's nDCG@10
    odd = render_report(cases["row without hits"])
    assert sorted(charts(odd)) == sorted(
        ["modes", "latency", "languages-odd__mode_", "languages-odd__mode_-2"]
        + [f"{k}-odd__mode_{s}" for k in ("share", "relevant") for s in ("", "-2")]
    )
    assert cell_values(svg_of(odd, "share-odd__mode_")) == {}  # no hits: grey dash cells
    assert cell_values(svg_of(odd, "relevant-odd__mode_")) == {("en", "en"): 1.0}
    nan = render_report(cases["nan comparison"])
    assert "p = \u2013" in svg_of(nan, "comparison")
    assert "No metric compared." in render_report(cases["empty comparison"])
    assert "No query listed." in render_report(cases["empty worst"])


def test_standard_library_only() -> None:
    tree = ast.parse(Path(report_module.__file__).read_text(encoding="utf-8"))
    modules = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert modules <= set(sys.stdlib_module_names)


def test_not_a_number_share_is_a_grey_cell() -> None:
    mode = dict(
        mode_json("hybrid", 0.5),
        language_share={
            "en": {"queries": 2, "depth": 10, "hits": {"en": math.nan, "fr": 1.0}, "relevant": {}}
        },
    )
    page = render_report(ReportData(title="t", settings={}, modes=[mode]))
    assert cell_values(svg_of(page, "share-hybrid")) == {("en", "fr"): 1.0}
    assert cell_values(svg_of(page, "relevant-hybrid")) == {}


def test_significance_from_alpha_when_not_given() -> None:
    comparison = {
        "a": "x",
        "b": "y",
        "alpha": 0.05,
        "metrics": {"nDCG@10": {"a": 0.5, "b": 0.6, "p_value": 0.01}, "R@1": {"p_value": 0.5}},
    }
    page = render_report(ReportData(title="t", settings={}, modes=[], comparison=comparison))
    svg = svg_of(page, "comparison")
    assert "+0.1000 · p = 0.010 *" in svg  # diff computed as b - a
    assert "\u2013 · p = 0.500" in svg
    assert svg.count('class="bar"') == 1


@dataclass(frozen=True)
class OtherWorst:
    """Shaped like MissedQuery (as the harness's own worst-query record is)."""

    qid: str
    text: str
    lang: str
    score: float
    hits: list[tuple[str, str, float, bool]]
    missed: list[tuple[str, str]]


def test_worst_queries_of_any_matching_shape() -> None:
    worst = {"hybrid": [OtherWorst("q1", "a & b", "en", 0.25, [("d1", "en", 1.0, True)], [])]}
    page = render_report(ReportData(title="t", settings={}, modes=[], worst=worst))
    assert "<h4>q1 · en · nDCG@10 0.2500</h4>" in page
    assert "a &amp; b" in page
