"""Resuming a large ingest: time to the first new document, and memory over a long run.

A generated JSONL source of ``--records`` short records (default 1,000,000) is ingested once
into a fresh index with a checkpoint. Then ``--new`` records are appended and the same command
runs again, twice:

* ``resume``: from the checkpoint (the default): it hashes the file's prefix and seeks past it;
* ``baseline``: ``from_start=True``, what every rerun did before checkpoints: each record is
  read, validated and looked up in the index (mget) before the first new one is reached.

Both are timed to the first new document handed to the writer and to the end. The embedder is
a deterministic hashing encoder (8 dimensions, no model), so the runs measure reading, the
cluster and xlidx itself, not a network's speed. During the first ingest, the process's
resident memory is sampled at every tenth of the input: it must stay flat (bounded by batch
and queue sizes), not grow with the input.

    .venv/bin/python benchmarks/bench_resume.py [--records 1000000] [--body-bytes 60] \
        [--url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = (
    (
        "the",
        "river",
        "town",
        "rain",
        "flood",
        "bridge",
        "market",
        "school",
        "winter",
        "garden",
        "harbour",
        "train",
        "museum",
        "after",
        "three",
        "days",
        "of",
        "heavy",
        "old",
        "with",
    ),
    (
        "der",
        "Fluss",
        "Stadt",
        "Regen",
        "Brücke",
        "Markt",
        "Schule",
        "Winter",
        "Garten",
        "Hafen",
        "Zug",
        "Museum",
        "nach",
        "drei",
        "Tagen",
        "starken",
        "die",
        "alte",
        "und",
        "mit",
    ),
    (
        "la",
        "rivière",
        "ville",
        "pluie",
        "pont",
        "marché",
        "école",
        "hiver",
        "jardin",
        "port",
        "train",
        "musée",
        "après",
        "trois",
        "jours",
        "de",
        "fortes",
        "vieille",
        "et",
        "avec",
    ),
)  # one language per record, so that each is detected at once, as most real text is


class HashEmbedder:
    """Vectors from a hash of the text: the same text, the same vector; no model."""

    name = "bench-hash-8"
    source = "bench-hash-8"

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "dimension": 8, "query_prompt": "", "document_prompt": ""}

    def split_passages(self, text: str) -> list[str]:
        return [text]

    def encode_document(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for t in texts:
            h = hashlib.blake2b(t.encode(), digest_size=8).digest()
            out.append([(b - 127.5) / 127.5 + 1e-3 for b in h])
        return out


def make_source(path: Path, n: int, body_bytes: int, start: int = 0) -> None:
    """``n`` records of about ``body_bytes`` each: a window of one language's running text
    (built once), starting at a place that depends on the record, after its number."""
    texts = []
    for vocabulary in WORDS:
        words = [vocabulary[(k * 7 + k // 20) % len(vocabulary)] for k in range(8000)]
        texts.append(" ".join(words))
    with path.open("a", encoding="utf-8") as fh:
        for i in range(start, start + n):
            text = texts[i % len(texts)]
            seed = int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=4).digest(), "big")
            at = text.index(" ", seed % (len(text) - body_bytes - 100)) + 1
            body = f"{i} {text[at : at + body_bytes]}"
            fh.write(json.dumps({"id": f"r{i}", "body": body}, ensure_ascii=False))
            fh.write("\n")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_run(src: Path, options: Any, backend: Any, *, total: int, sample: bool) -> dict[str, Any]:
    from xlidx.workflows.ingest import FileSource, ingest

    t0 = time.monotonic()
    first_new: list[float] = []
    samples: list[tuple[int, float]] = []
    done = [0]
    step = max(1, total // 10)

    def progress(stage: str, n: int) -> None:
        if stage == "writing" and not first_new:
            first_new.append(time.monotonic() - t0)
        if stage == "done":
            before = done[0]
            done[0] += n
            if sample and done[0] // step > before // step:
                samples.append((done[0], rss_mb()))
                elapsed = time.monotonic() - t0
                print(f"{done[0]:,} records, {elapsed:.0f} s, RSS {samples[-1][1]:.0f} MB",
                      file=sys.stderr, flush=True)  # fmt: skip

    summary = ingest(
        FileSource(src, "jsonl"),
        backend=backend,
        options=options,
        embedder=HashEmbedder(),
        progress=progress,
    )
    return {
        "seconds": round(time.monotonic() - t0, 2),
        "first_new_s": round(first_new[0], 2) if first_new else None,
        "read": summary.read,
        "indexed": summary.indexed,
        "unchanged": summary.unchanged,
        "resumed_after": summary.resumed_after,
        "rss_mb": [(n, round(mb)) for n, mb in samples],
        "peak_rss_mb": round(_peak_mb()),
    }


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("XLIDX_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--body-bytes", type=int, default=60)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="Only the first ingest and its memory samples (for sources of several GB).",
    )
    args = parser.parse_args()

    from xlidx.backends import open_backend
    from xlidx.config import ConnectionSettings
    from xlidx.workflows.ingest import IngestOptions

    backend = open_backend(ConnectionSettings(urls=(args.url,), timeout=120.0))
    index = f"bench-resume-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="xlidx-bench-resume-"))
    src = work / "source.jsonl"
    make_source(src, args.records, args.body_bytes)
    size_mb = src.stat().st_size / 1e6
    options = IngestOptions(
        index=index,
        text_fields=("body",),
        languages=("en", "de", "fr"),
        batch_size=args.batch_size,
        checkpoints=work / "checkpoints",
    )
    results: dict[str, Any] = {"records": args.records, "source_mb": round(size_mb, 1)}
    try:
        results["first"] = timed_run(src, options, backend, total=args.records, sample=True)
        if args.memory_only:
            f = results["first"]
            rss = [mb for _n, mb in f["rss_mb"]]
            print(json.dumps(results, indent=1))
            print(
                f"| {args.records:,} records ({size_mb:,.0f} MB) | {f['seconds']:.0f} s "
                f"({args.records / f['seconds']:,.0f} docs/s) | RSS at 10%..100%: "
                f"{min(rss):.0f}-{max(rss):.0f} MB, peak {f['peak_rss_mb']} MB |"
            )
            return
        make_source(src, args.new, args.body_bytes, start=args.records)
        results["resume"] = timed_run(src, options, backend, total=args.new, sample=False)
        make_source(src, args.new, args.body_bytes, start=args.records + args.new)
        baseline = IngestOptions(**{**options.__dict__, "from_start": True})
        results["baseline"] = timed_run(src, baseline, backend, total=args.records, sample=False)
        backend.refresh(index)
        results["count"] = backend.count(index)
        results["expected"] = args.records + 2 * args.new
    finally:
        backend.delete_indices(backend.list_indices(f"{index}*"))
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    r, b, f = results["resume"], results["baseline"], results["first"]
    ratio = b["first_new_s"] / r["first_new_s"] if r["first_new_s"] else float("nan")
    rss = [mb for _n, mb in f["rss_mb"]]
    print(
        f"| {args.records:,} records ({size_mb:,.0f} MB) | first ingest {f['seconds']:.0f} s "
        f"({args.records / f['seconds']:,.0f} docs/s) | first new document: resume "
        f"{r['first_new_s']:.2f} s, baseline {b['first_new_s']:.1f} s ({ratio:,.0f}x) | "
        f"RSS at 10%..100%: {min(rss):.0f}-{max(rss):.0f} MB | count "
        f"{results['count']:,}/{results['expected']:,} |"
    )


if __name__ == "__main__":
    main()
