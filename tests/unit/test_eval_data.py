"""Reading queries (TSV, JSONL) and TREC qrels: good files parse, bad ones fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlidx.errors import ConfigError
from xlidx.eval.data import EvalQuery, Qrels, check_qrels, read_qrels, read_queries


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _error(fn: object, *args: object) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message
    return message


# -- queries: TSV ------------------------------------------------------------------------------


def test_tsv_with_header_lang_blank_lines_crlf_and_bom(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "q.tsv",
        "\ufeffqid\ttext\tlang\r\nq1\tWhere is the cat?\ten\r\n\r\nq2\t  Où est le chat ?  \r\n"
        "q3\tDer Hund\tDE\n",
    )
    assert read_queries(p) == [
        EvalQuery("q1", "Where is the cat?", "en"),
        EvalQuery("q2", "Où est le chat ?", None),
        EvalQuery("q3", "Der Hund", "de"),
    ]


def test_tsv_without_header(tmp_path: Path) -> None:
    p = _write(tmp_path / "q.txt", "1\tfirst query\n2\tsecond query\t\n")
    assert [(q.qid, q.text, q.lang) for q in read_queries(p)] == [
        ("1", "first query", None),
        ("2", "second query", None),
    ]


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("q1\tok\nq2\n", 2, "found 1 tab-separated field"),
        ("q1\tok\tfr\textra\n", 1, "found 4 tab-separated field"),
        ("q1\t   \n", 1, "query text of 'q1' is empty"),
        ("\tsome text\n", 1, "query id is empty"),
        ("q1\ttext\tnot-a-language\n", 1, "'lang' must be a language code"),
        ("q1\ta\nq1\tb\n", 2, "duplicate query id 'q1' (first on line 1)"),
    ],
)
def test_tsv_bad_lines(tmp_path: Path, content: str, line: int, needle: str) -> None:
    p = _write(tmp_path / "q.tsv", content)
    message = _error(read_queries, p)
    assert message.startswith(f"{p}:{line}: ")
    assert needle in message


# -- queries: JSONL ----------------------------------------------------------------------------


def test_jsonl_aliases_and_integer_ids(tmp_path: Path) -> None:
    rows = [
        {"qid": "a", "text": "alpha", "lang": "en"},
        {"id": 7, "query": "seven"},
        {"qid": "b", "text": " beta ", "lang": None, "other": 1},
    ]
    p = _write(tmp_path / "q.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_queries(p) == [
        EvalQuery("a", "alpha", "en"),
        EvalQuery("7", "seven", None),
        EvalQuery("b", "beta", None),
    ]


def test_format_sniffed_from_content_and_forced(tmp_path: Path) -> None:
    p = _write(tmp_path / "queries", '{"qid": "x", "text": "hello"}\n')
    assert read_queries(p) == [EvalQuery("x", "hello")]
    tsv = _write(tmp_path / "q.data", "x\thello\n")
    assert read_queries(tsv) == [EvalQuery("x", "hello")]
    assert read_queries(_write(tmp_path / "q.tsv", '{"a":1}\tb\n'), "tsv")[0].qid == '{"a":1}'
    assert "unknown queries format 'csv'" in _error(read_queries, tsv, "csv")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"qid": "a", "text": ', "malformed JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"text": "no id"}', "needs a string or integer 'qid'"),
        ('{"qid": true, "text": "bool id"}', "needs a string or integer 'qid'"),
        ('{"qid": "", "text": "empty id"}', "needs a string or integer 'qid'"),
        ('{"qid": "a"}', "needs a non-empty string 'text'"),
        ('{"qid": "a", "text": "   "}', "needs a non-empty string 'text'"),
        ('{"qid": "a", "text": 3}', "needs a non-empty string 'text'"),
        ('{"qid": "a", "text": "x", "lang": 5}', "'lang' must be a language code"),
        ('{"qid": "a", "text": "x", "lang": "english"}', "'lang' must be a language code"),
    ],
)
def test_jsonl_bad_lines(tmp_path: Path, line: str, needle: str) -> None:
    p = _write(tmp_path / "q.jsonl", '{"qid": "ok", "text": "fine"}\n' + line + "\n")
    message = _error(read_queries, p)
    assert message.startswith(f"{p}:2: ")
    assert needle in message


# -- queries: files ----------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n\n  \n", "qid\ttext\n"])
def test_empty_query_files(tmp_path: Path, content: str) -> None:
    p = _write(tmp_path / "q.tsv", content)
    assert _error(read_queries, p) == f"{p}: no queries in the file"


def test_missing_directory_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tsv"
    assert _error(read_queries, missing) == f"{missing}: no such file"
    assert "is a directory" in _error(read_queries, tmp_path)
    bad = _write(tmp_path / "q.tsv", b"q1\tgood\nq2\t\xff\xfe bad\n")
    assert _error(read_queries, bad) == f"{bad}:2: not valid UTF-8"
    bad_qrels = _write(tmp_path / "qrels", b"q1 0 d1 1\nq1 0 d\xff 1\n")
    assert _error(read_qrels, bad_qrels) == f"{bad_qrels}:2: not valid UTF-8"


# -- qrels -------------------------------------------------------------------------------------


def test_qrels_parse(tmp_path: Path) -> None:
    p = _write(tmp_path / "qrels.txt", "q1 0 d1 1\nq1 0 d2 0\n\nq2\tQ0\td3\t2\nq3 0 d4 -1\n")
    qrels = read_qrels(p)
    assert qrels.judgments == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}, "q3": {"d4": -1}}
    assert qrels.lines == {"q1": 1, "q2": 4, "q3": 5}
    assert qrels.relevant("q1") == {"d1": 1}
    assert qrels.relevant("q3") == {}
    assert qrels.relevant("unknown") == {}
    assert qrels.path == str(p)


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("q1 0 d1 1\nq2 0 d2\n", 2, "found 3 field(s)"),
        ("q1 0 d1 1 extra\n", 1, "found 5 field(s)"),
        ("q1 0 d1 yes\n", 1, "relevance must be an integer, got 'yes'"),
        ("q1 0 d1 0.5\n", 1, "relevance must be an integer"),
        ("q1 0 d1 1\nq1 0 d1 0\n", 2, "duplicate judgment of document 'd1' for query 'q1'"),
    ],
)
def test_qrels_bad_lines(tmp_path: Path, content: str, line: int, needle: str) -> None:
    p = _write(tmp_path / "qrels", content)
    message = _error(read_qrels, p)
    assert message.startswith(f"{p}:{line}: ")
    assert needle in message


def test_qrels_empty(tmp_path: Path) -> None:
    p = _write(tmp_path / "qrels", "\n \n")
    assert _error(read_qrels, p) == f"{p}: no judgments in the file"


def test_check_qrels_unknown_qids_and_nothing_relevant(tmp_path: Path) -> None:
    queries = [EvalQuery("q1", "one"), EvalQuery("q2", "two")]
    p = _write(tmp_path / "qrels", "q1 0 d1 1\nq9 0 d2 1\nq8 0 d3 1\n")
    message = _error(check_qrels, queries, read_qrels(p))
    assert message == f"{p}:2: query id 'q9' is not in the queries file (and 1 more)"

    zero = _write(tmp_path / "zero", "q1 0 d1 0\nq2 0 d2 -1\n")
    assert "no query has a relevant document" in _error(check_qrels, queries, read_qrels(zero))

    check_qrels(queries, Qrels({"q1": {"d1": 1}}))  # a query without judgments is fine
