"""Read evaluation inputs: queries (TSV or JSONL) and relevance judgments (TREC qrels).

* Queries, TSV: ``qid<TAB>text[<TAB>lang]`` per line; an optional header line
  ``qid<TAB>text[<TAB>lang]`` (or ``id``/``query``) is skipped.
* Queries, JSONL: one object per line, ``{"qid" or "id": …, "text" or "query": …, "lang"?: …}``.
* Qrels: TREC format, ``qid iteration docid relevance`` (whitespace separated, relevance an
  integer; the iteration column is ignored).

Blank lines are skipped everywhere. Anything else that does not fit raises
:class:`~xlidx.errors.ConfigError` with one line naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xlidx.documents import is_lang_code
from xlidx.errors import ConfigError

QUERY_FORMATS = ("tsv", "jsonl")
_TSV_HEADER_IDS = {"qid", "id", "query_id"}
_TSV_HEADER_TEXTS = {"text", "query"}


@dataclass(frozen=True)
class EvalQuery:
    qid: str
    text: str
    lang: str | None = None  # declared language; None = detect it


@dataclass(frozen=True)
class Qrels:
    """``judgments[qid][docid] = relevance``; ``lines[qid]`` = the first line naming qid."""

    judgments: Mapping[str, Mapping[str, int]]
    path: str = "<qrels>"
    lines: Mapping[str, int] = field(default_factory=dict)

    def relevant(self, qid: str) -> dict[str, int]:
        """The documents judged relevant (relevance > 0) for ``qid``."""
        return {d: r for d, r in self.judgments.get(qid, {}).items() if r > 0}


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line; a line that is not UTF-8 is an error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}:{n}: not valid UTF-8") from None
        if n == 1:
            line = line.removeprefix("\ufeff")
        if line.strip():
            yield n, line


def _lang(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: 'lang' must be a language code like 'en', got {value!r}")
    lang = value.strip().lower()
    if not is_lang_code(lang):
        raise ConfigError(f"{where}: 'lang' must be a language code like 'en', got {value!r}")
    return lang


def query_format(path: Path, fmt: str | None = None) -> str:
    """``tsv`` or ``jsonl``: ``fmt`` if given, else from the suffix, else from the content."""
    if fmt is not None:
        if fmt not in QUERY_FORMATS:
            raise ConfigError(f"unknown queries format {fmt!r}: expected tsv or jsonl")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".tsv", ".txt", ".tab"):
        return "tsv"
    for _n, line in _lines(path):
        return "jsonl" if line.lstrip().startswith("{") else "tsv"
    return "tsv"


def _tsv_queries(path: Path) -> Iterator[tuple[int, EvalQuery]]:
    for i, (n, line) in enumerate(_lines(path)):
        parts = line.split("\t")
        fields = [f.strip().lower() for f in parts]
        if (
            i == 0
            and len(parts) > 1
            and fields[0] in _TSV_HEADER_IDS
            and fields[1] in _TSV_HEADER_TEXTS
        ):
            continue  # a header line
        if len(parts) not in (2, 3):
            raise ConfigError(
                f"{path}:{n}: expected qid<TAB>text[<TAB>lang], found {len(parts)} "
                f"tab-separated field(s)"
            )
        qid, text = parts[0].strip(), parts[1].strip()
        if not qid:
            raise ConfigError(f"{path}:{n}: the query id is empty")
        if not text:
            raise ConfigError(f"{path}:{n}: the query text of {qid!r} is empty")
        lang = _lang(parts[2], f"{path}:{n}") if len(parts) == 3 and parts[2].strip() else None
        yield n, EvalQuery(qid, text, lang)


def _jsonl_queries(path: Path) -> Iterator[tuple[int, EvalQuery]]:
    for n, line in _lines(path):
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: malformed JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        qid = obj.get("qid", obj.get("id"))
        if isinstance(qid, bool) or not isinstance(qid, str | int) or not str(qid).strip():
            raise ConfigError(f"{where}: needs a string or integer 'qid' (or 'id')")
        text = obj.get("text", obj.get("query"))
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: needs a non-empty string 'text' (or 'query')")
        yield n, EvalQuery(str(qid).strip(), text.strip(), _lang(obj.get("lang"), where))


def read_queries(path: str | Path, fmt: str | None = None) -> list[EvalQuery]:
    """The queries in ``path`` (TSV or JSONL, see the module docstring), in file order."""
    p = Path(path)
    rows = _jsonl_queries(p) if query_format(p, fmt) == "jsonl" else _tsv_queries(p)
    out: list[EvalQuery] = []
    seen: dict[str, int] = {}
    for n, q in rows:
        if q.qid in seen:
            raise ConfigError(
                f"{p}:{n}: duplicate query id {q.qid!r} (first on line {seen[q.qid]})"
            )
        seen[q.qid] = n
        out.append(q)
    if not out:
        raise ConfigError(f"{p}: no queries in the file")
    return out


def read_qrels(path: str | Path) -> Qrels:
    """TREC qrels: ``qid iteration docid relevance`` per line."""
    p = Path(path)
    judgments: dict[str, dict[str, int]] = {}
    lines: dict[str, int] = {}
    for n, line in _lines(p):
        parts = line.split()
        if len(parts) != 4:
            raise ConfigError(
                f"{p}:{n}: expected 'qid iteration docid relevance', found {len(parts)} field(s)"
            )
        qid, _iteration, docid, rel_text = parts
        try:
            rel = int(rel_text)
        except ValueError:
            raise ConfigError(f"{p}:{n}: relevance must be an integer, got {rel_text!r}") from None
        docs = judgments.setdefault(qid, {})
        if docid in docs:
            raise ConfigError(
                f"{p}:{n}: duplicate judgment of document {docid!r} for query {qid!r}"
            )
        docs[docid] = rel
        lines.setdefault(qid, n)
    if not judgments:
        raise ConfigError(f"{p}: no judgments in the file")
    return Qrels(judgments=judgments, path=str(p), lines=lines)


def check_qrels(queries: list[EvalQuery], qrels: Qrels) -> None:
    """Fail on judgments for unknown queries, or when no query has a relevant document."""
    known = {q.qid for q in queries}
    unknown = [qid for qid in qrels.judgments if qid not in known]
    if unknown:
        first = min(unknown, key=lambda q: qrels.lines.get(q, 0))
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConfigError(
            f"{qrels.path}:{qrels.lines.get(first, 0)}: query id {first!r} is not in the "
            f"queries file{more}"
        )
    if not any(qrels.relevant(q.qid) for q in queries):
        raise ConfigError(f"{qrels.path}: no query has a relevant document (relevance > 0)")
