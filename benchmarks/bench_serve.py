"""``xlidx serve`` against the servers people deploy today, measured in one run on one machine.

Sections (each prints a markdown table; ``--json OUT`` writes every figure):

* ``embed``: ``POST /v1/embeddings`` (OpenAI format) of xlidx against **infinity-emb**'s
  ``POST /embeddings``, serving the same multilingual-e5-small folder (infinity reads the
  old-format copy ``benchmarks/peers/old_format.py`` writes). Texts/s and p50/p99 request
  latency with 1, 8 and 32 concurrent clients (``httpx.AsyncClient``), 1 and 32 texts per
  request. Each cell runs ``--warmup`` seconds untimed, then ``--seconds`` (and on until
  ``--min-requests`` answers); the two servers alternate going first. Same texts, same
  prompt: xlidx gets the raw text with ``input_type: "ingest"`` and applies e5's
  ``"passage: "`` itself; infinity gets ``"passage: " + text``. The vectors of both are
  compared (cosine) before timing. Targets: throughput >= 1.0x, p50 <= 1.0x.
* ``encode``: the service against sentence-transformers ``encode`` in this process, on the same
  texts (requests of 32, 1 and 8 clients, vs ``encode(batch_size=32)``). Target >= 0.9x.
* ``translate``: ``POST /translate`` (LibreTranslate format, one sentence per request) of xlidx
  against **LibreTranslate**'s own, both with the same argos package
  (``benchmarks/peers/build_argos_package.py``), 1, 8 and 32 concurrent clients. Target >= 3x.
* ``search`` (with ``--index``): ``POST /indices/{name}/search`` p50, one client, against the
  same work in this process: one ``Searcher.prepare`` (language detection, e5 query encode,
  centering) plus a replay of the engine requests xlidx sends for that query, captured
  beforehand. Target: overhead <= 10%.
* ``cli`` (with ``--index``): ``xlidx query --serve URL`` against a cold ``xlidx query``
  (subprocesses, ``--cli-runs`` each), p50 of each.

Texts: Tatoeba sentences (``/work/shared/data/tatoeba``; CC BY 2.0 FR, the Tatoeba project,
tatoeba.org, and its contributors, via the LASER test sets): en/fr/de/es for embeddings, the
English side for translation and queries.

Peers (``bash benchmarks/peers/setup.sh`` builds them under ``~/.cache/xlidx/peers``):
``--start-peers`` starts infinity and LibreTranslate on free loopback ports, offline, and stops
them at the end; otherwise pass ``--infinity-url`` / ``--libretranslate-url``.
``--start-xlidx`` starts ``xlidx serve`` the same way (with the peers' argos packages
directory); otherwise the service at ``--url`` is used. Run from the repository root::

    .venv/bin/python benchmarks/bench_serve.py --start-peers --start-xlidx [--index NAME]

Smoke test of the harness without an xlidx service: ``--smoke`` points the xlidx side at the
peers themselves (infinity for embeddings, LibreTranslate for translation): every ratio is then
peer against itself, about 1.0.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx

REPO = Path(__file__).resolve().parent.parent
TATOEBA = Path(os.environ.get("XLIDX_TATOEBA_DIR", "/work/shared/data/tatoeba"))
E5_SMALL_DIR = Path(
    os.environ.get("XLIDX_E5_SMALL_DIR", "~/.cache/xlidx/models/multilingual-e5-small")
).expanduser()
PEERS_DIR = Path(os.environ.get("XLIDX_PEERS_DIR", "~/.cache/xlidx/peers")).expanduser()
PASSAGE = "passage: "
INFINITY_MODEL = "multilingual-e5-small"  # --served-model-name given to infinity
START_TIMEOUT_S = 300.0

Body = dict[str, Any]


# -- small helpers ------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return math.nan
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b and not math.isnan(a) and not math.isnan(b) else math.nan


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_lines(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def embed_texts() -> list[str]:
    """Tatoeba sentences in en, fr, de and es, interleaved, without duplicates."""
    files = [
        "tatoeba.fra-eng.eng",
        "tatoeba.fra-eng.fra",
        "tatoeba.deu-eng.deu",
        "tatoeba.spa-eng.spa",
    ]
    columns = [read_lines(TATOEBA / f) for f in files]
    seen: set[str] = set()
    out = []
    for row in itertools.zip_longest(*columns):
        for text in row:
            if text and text not in seen:
                seen.add(text)
                out.append(text)
    return out


def english_texts() -> list[str]:
    return read_lines(TATOEBA / "tatoeba.fra-eng.eng")


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


# -- servers ----------------------------------------------------------------------------------
class Server:
    """A server in a subprocess, its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], health: str) -> None:
        self.name, self.cmd, self.env, self.health = name, cmd, env, health
        self.log = Path(tempfile.gettempdir()) / f"xlidx-bench-serve-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        print(f"starting {self.name}: {' '.join(self.cmd)} (log: {self.log})", file=sys.stderr)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}:\n{tail}")
            try:
                if httpx.get(self.health, timeout=2.0).status_code == 200:
                    print(f"{self.name} ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"{self.name} not healthy after {timeout:.0f} s (log: {self.log})")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def infinity_server(port: int) -> Server:
    venv, model = PEERS_DIR / "infinity", PEERS_DIR / "e5-small-old"
    for path in (venv / "bin" / "infinity_emb", model / "modules.json"):
        if not path.exists():
            raise SystemExit(f"{path} missing: run bash benchmarks/peers/setup.sh")
    cmd = [
        str(venv / "bin" / "infinity_emb"),
        "v2",
        "--model-id",
        str(model),
        "--served-model-name",
        INFINITY_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--no-model-warmup",  # the benchmark warms every cell up itself
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    }
    return Server("infinity", cmd, env, f"http://127.0.0.1:{port}/health")


def argos_env() -> dict[str, str]:
    """Offline argos settings shared by LibreTranslate and the xlidx service."""
    home = PEERS_DIR / "lt-home"
    # argos (SPACY chunking) downloads spaCy's xx_sent_ud_sm at import unless this exists; the
    # packages carry their own blank spaCy pipeline, which is what it then uses
    (home / "cache" / "argos-translate" / "spacy" / "senter" / "model").mkdir(
        parents=True, exist_ok=True
    )
    return {
        "ARGOS_PACKAGES_DIR": str(PEERS_DIR / "argos-packages"),
        "ARGOS_CHUNK_TYPE": "SPACY",
        "ARGOS_DEVICE_TYPE": "cpu",
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "HF_HUB_OFFLINE": "1",
    }


def libretranslate_server(port: int, langs: str) -> Server:
    exe = PEERS_DIR / "libretranslate" / "bin" / "libretranslate"
    if not exe.exists() or not (PEERS_DIR / "argos-packages").is_dir():
        raise SystemExit(f"{exe} or its packages missing: run bash benchmarks/peers/setup.sh")
    cmd = [
        str(exe),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--load-only",
        langs,
        "--disable-web-ui",
    ]
    env = {**os.environ, **argos_env()}
    return Server("libretranslate", cmd, env, f"http://127.0.0.1:{port}/languages")


def xlidx_server(port: int, model: str, api_key: str | None, index: str | None) -> Server:
    exe = shutil.which("xlidx", path=str(REPO / ".venv" / "bin")) or "xlidx"
    cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--model", model]
    cmd += ["--device", "cpu"]
    if index:
        cmd += ["--index", index]
    env = {**os.environ, "ARGOS_PACKAGES_DIR": str(PEERS_DIR / "argos-packages")}
    env["HF_HUB_OFFLINE"] = "1"
    if api_key:
        cmd += ["--api-key", api_key]
    return Server("xlidx", cmd, env, f"http://127.0.0.1:{port}/health")


# -- load generator -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """How long a measured cell runs: ``warmup`` seconds untimed (at least one round), then
    ``seconds``, and on until ``min_requests`` have been answered."""

    seconds: float
    warmup: float
    min_requests: int


async def _drive(
    url: str,
    make_body: Callable[[int], Body],
    check: Callable[[Any, Body], int],
    *,
    concurrency: int,
    load: Load,
    headers: dict[str, str],
) -> dict[str, Any]:
    """``concurrency`` clients post bodies back to back (see :class:`Load`). 429s are retried
    after ``Retry-After`` (capped at 1 s) and counted; such a request's latency runs from its
    first try."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = itertools.count()
    throttled = 0
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(300.0), headers=headers
    ) as client:

        async def one() -> tuple[float, int]:
            nonlocal throttled
            body = make_body(next(counter))
            t = time.perf_counter()
            while True:
                r = await client.post(url, json=body)
                if r.status_code != 429:
                    break
                throttled += 1
                await asyncio.sleep(min(1.0, float(r.headers.get("retry-after") or 0.05)))
            if r.status_code != 200:
                raise SystemExit(f"POST {url}: {r.status_code} {r.text[:300]}")
            n = check(r.json(), body)
            return time.perf_counter() - t, n

        async def phase(seconds: float, min_requests: int) -> tuple[list[float], int, float]:
            latencies: list[float] = []
            done = 0
            start = time.perf_counter()
            deadline = start + seconds

            async def worker() -> None:
                nonlocal done
                first = True
                while first or time.perf_counter() < deadline or len(latencies) < min_requests:
                    first = False
                    dt, n = await one()
                    latencies.append(dt)
                    done += n

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, done, time.perf_counter() - start

        await phase(load.warmup, 0)
        throttled = 0
        latencies, done, elapsed = await phase(load.seconds, load.min_requests)
    return {
        "texts_per_s": round(done / elapsed, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "requests": len(latencies),
        "texts": done,
        "seconds": round(elapsed, 2),
        "throttled_429": throttled,
    }


def drive(
    url: str,
    make_body: Callable[[int], Body],
    check: Callable[[Any, Body], int],
    *,
    concurrency: int,
    load: Load,
    headers: dict[str, str],
) -> dict[str, Any]:
    return asyncio.run(
        _drive(url, make_body, check, concurrency=concurrency, load=load, headers=headers)
    )


async def _fixed_work(
    url: str,
    bodies: list[Body],
    check: Callable[[Any, Body], int],
    concurrency: int,
    headers: dict[str, str],
) -> float:
    """Seconds to post every body once, ``concurrency`` at a time (after one warm-up)."""
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(300.0), headers=headers
    ) as client:

        async def post(body: Body) -> None:
            while True:
                r = await client.post(url, json=body)
                if r.status_code != 429:
                    break
                await asyncio.sleep(min(1.0, float(r.headers.get("retry-after") or 0.05)))
            if r.status_code != 200:
                raise SystemExit(f"POST {url}: {r.status_code} {r.text[:300]}")
            check(r.json(), body)

        await post(bodies[0])
        start = time.perf_counter()

        async def worker() -> None:
            while queue:
                await post(queue.pop())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def load_of(args: argparse.Namespace) -> Load:
    return Load(seconds=args.seconds, warmup=args.warmup, min_requests=args.min_requests)


# -- embeddings ---------------------------------------------------------------------------------
class EmbedSide:
    """How one server is asked for e5 passage vectors over the OpenAI embeddings format."""

    def __init__(self, name: str, url: str, model: str, *, prompt_in_text: bool, key: str | None):
        self.name, self.url, self.model = name, url, model
        self.prompt_in_text = prompt_in_text  # True: send "passage: " + text, no input_type
        self.headers = auth_headers(key)

    def body(self, texts: list[str]) -> Body:
        if self.prompt_in_text:
            return {"model": self.model, "input": [PASSAGE + t for t in texts]}
        return {"model": self.model, "input": texts, "input_type": "ingest"}

    def vectors(self, texts: list[str]) -> list[list[float]]:
        r = httpx.post(self.url, json=self.body(texts), headers=self.headers, timeout=120.0)
        if r.status_code != 200:
            raise SystemExit(f"{self.name}: POST {self.url}: {r.status_code} {r.text[:300]}")
        data = sorted(r.json()["data"], key=lambda d: d["index"])
        return [d["embedding"] for d in data]


def check_embeddings(payload: Any, body: Body) -> int:
    data = payload["data"]
    if len(data) != len(body["input"]) or [d["index"] for d in data] != list(range(len(data))):
        raise SystemExit(f"embeddings: {len(data)} answers for {len(body['input'])} inputs")
    return len(data)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def xlidx_model_name(url: str, given: str | None, key: str | None) -> str:
    """``--xlidx-model``, else the first plain model ``GET /v1/models`` lists, else the path."""
    if given:
        return given
    try:
        r = httpx.get(f"{url}/v1/models", headers=auth_headers(key), timeout=10.0)
        if r.status_code == 200:
            for m in r.json().get("data", []):
                if not str(m.get("id", "")).startswith("xlidx/"):
                    return str(m["id"])
    except (httpx.HTTPError, ValueError, KeyError):
        pass
    return str(E5_SMALL_DIR)


def bench_embeddings(
    ours: EmbedSide, peer: EmbedSide, texts: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    sample = texts[:16]
    cos = [cosine(a, b) for a, b in zip(ours.vectors(sample), peer.vectors(sample), strict=True)]
    agreement = round(min(cos), 5)
    print(
        f"embed: min cosine xlidx vs {peer.name} on {len(sample)} texts: {agreement}",
        file=sys.stderr,
    )
    cells: list[dict[str, Any]] = []
    for batch in parse_ints(args.batch_sizes):
        for conc in parse_ints(args.concurrency):
            row: dict[str, Any] = {"concurrency": conc, "texts_per_request": batch}
            # alternate which side runs first, so slow drift of the machine hits both
            sides = [ours, peer] if len(cells) % 2 == 0 else [peer, ours]
            for side in sides:

                def make_body(i: int, side: EmbedSide = side, batch: int = batch) -> Body:
                    start = (i * batch) % len(texts)
                    chunk = (texts + texts)[start : start + batch]
                    return side.body(chunk)

                row[side.name] = drive(
                    side.url,
                    make_body,
                    check_embeddings,
                    concurrency=conc,
                    load=load_of(args),
                    headers=side.headers,
                )
            row["throughput_ratio"] = ratio(
                row[ours.name]["texts_per_s"], row[peer.name]["texts_per_s"]
            )
            row["p50_ratio"] = ratio(row[ours.name]["p50_ms"], row[peer.name]["p50_ms"])
            print(f"embed c={conc} b={batch}: {row['throughput_ratio']}x", file=sys.stderr)
            cells.append(row)
    return {"peer": peer.name, "min_cosine": agreement, "cells": cells}


def bench_encode(ours: EmbedSide, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """The service against sentence-transformers encode() in this process, same texts."""
    texts = texts[: args.encode_texts]
    bodies = [ours.body(texts[i : i + 32]) for i in range(0, len(texts), 32)]
    service = {}
    for conc in parse_ints(args.encode_concurrency):
        seconds = asyncio.run(_fixed_work(ours.url, bodies, check_embeddings, conc, ours.headers))
        service[conc] = round(len(texts) / seconds, 1)

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(args.model_dir), device="cpu")
    model.encode(texts[:32], prompt=PASSAGE, batch_size=32)  # warm-up
    t = time.perf_counter()
    model.encode(texts, prompt=PASSAGE, batch_size=32)
    in_process = round(len(texts) / (time.perf_counter() - t), 1)
    del model
    return {
        "texts": len(texts),
        "in_process_texts_per_s": in_process,
        "service_texts_per_s": {str(c): v for c, v in service.items()},
        "ratios": {str(c): ratio(v, in_process) for c, v in service.items()},
    }


# -- translation ----------------------------------------------------------------------------------
def check_translation(payload: Any, body: Body) -> int:
    out = payload["translatedText"]
    if isinstance(body["q"], list):
        if not isinstance(out, list) or len(out) != len(body["q"]):
            raise SystemExit(f"translate: bad answer {str(payload)[:200]}")
        return len(out)
    if not isinstance(out, str):
        raise SystemExit(f"translate: bad answer {str(payload)[:200]}")
    return 1


def bench_translate(
    sides: dict[str, tuple[str, dict[str, str]]], texts: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    src, tgt = args.translate_pair.split("-")
    same = 0
    outputs: dict[str, list[str]] = {}
    for name, (url, headers) in sides.items():  # same tokens? (punctuation and case aside)
        outs = []
        for text in texts[:8]:
            body = {"q": text, "source": src, "target": tgt, "format": "text"}
            r = httpx.post(url, json=body, headers=headers, timeout=120.0)
            if r.status_code != 200:
                raise SystemExit(f"{name}: POST {url}: {r.status_code} {r.text[:300]}")
            outs.append(r.json()["translatedText"])
        outputs[name] = outs
    a, b = outputs.values()
    same = sum(
        "".join(c for c in x.lower() if c.isalnum()) == "".join(c for c in y.lower() if c.isalnum())
        for x, y in zip(a, b, strict=True)
    )
    cells: list[dict[str, Any]] = []
    names = list(sides)
    for conc in parse_ints(args.translate_concurrency):
        row: dict[str, Any] = {"concurrency": conc}
        for name in names if len(cells) % 2 == 0 else names[::-1]:
            url, headers = sides[name]

            def make_body(i: int) -> Body:
                return {"q": texts[i % len(texts)], "source": src, "target": tgt, "format": "text"}

            row[name] = drive(
                url,
                make_body,
                check_translation,
                concurrency=conc,
                load=load_of(args),
                headers=headers,
            )
        row["throughput_ratio"] = ratio(row[names[0]]["texts_per_s"], row[names[1]]["texts_per_s"])
        row["p50_ratio"] = ratio(row[names[0]]["p50_ms"], row[names[1]]["p50_ms"])
        print(f"translate c={conc}: {row['throughput_ratio']}x", file=sys.stderr)
        cells.append(row)
    return {"pair": f"{src}-{tgt}", "same_tokens": f"{same}/8", "cells": cells}


# -- search and the CLI -------------------------------------------------------------------------
class Replayer:
    """Captures the requests an engine client sends, and sends them again as they were."""

    def __init__(self, client: Any) -> None:
        self.original = client.transport.perform_request
        self.on = False
        self.seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def perform(*a: Any, **kw: Any) -> Any:
            if self.on:
                self.seen.append((a, kw))
            return self.original(*a, **kw)

        client.transport.perform_request = perform

    def capture(self, fn: Callable[[], Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        self.seen, self.on = [], True
        try:
            fn()
        finally:
            self.on = False
        return self.seen

    def replay(self, requests: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> None:
        for a, kw in requests:
            self.original(*a, **kw)


def bench_search(
    url: str, key: str | None, texts: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    from xlidx.backends import open_backend
    from xlidx.config import load_connection
    from xlidx.query.plan import Query
    from xlidx.search import Searcher

    backend = open_backend(load_connection())
    searcher = Searcher(backend, args.index, device="cpu")
    replayer = Replayer(cast(Any, backend).client)
    queries = texts[: args.queries]

    def query(text: str) -> Any:
        return Query(text).k(args.k).mode(args.mode)

    searcher.search(query(queries[0]))  # loads the model, caches the index facts
    captured = [replayer.capture(partial(searcher.search, query(t))) for t in queries]
    search_url = f"{url}/indices/{args.index}/search"
    headers = auth_headers(key)
    ours: list[float] = []
    base: list[float] = []
    library: list[float] = []
    encode_only: list[float] = []
    with httpx.Client(headers=headers, timeout=120.0) as client:

        def via_service(text: str) -> None:
            body = {"text": text, "mode": args.mode, "k": args.k}
            r = client.post(search_url, json=body)
            if r.status_code != 200:
                raise SystemExit(f"POST {search_url}: {r.status_code} {r.text[:300]}")

        for text in queries[:5]:  # warm-up
            via_service(text)
        for i, (text, requests) in enumerate(zip(queries, captured, strict=True)):
            sides = ("service", "direct", "library")
            for side in sides if i % 2 == 0 else sides[::-1]:
                t = time.perf_counter()
                if side == "service":
                    via_service(text)
                    ours.append(time.perf_counter() - t)
                elif side == "library":  # the whole library call, in this process
                    searcher.search(query(text))
                    library.append(time.perf_counter() - t)
                else:
                    searcher.prepare(query(text))
                    t1 = time.perf_counter()
                    replayer.replay(requests)
                    base.append(time.perf_counter() - t)
                    encode_only.append(t1 - t)
    p50, b50 = pct(ours, 50) * 1000, pct(base, 50) * 1000
    return {
        "index": args.index,
        "mode": args.mode,
        "queries": len(queries),
        "engine_requests_per_query": round(statistics.fmean(len(c) for c in captured), 2),
        "service_p50_ms": round(p50, 2),
        "in_process_p50_ms": round(b50, 2),
        "in_process_encode_p50_ms": round(pct(encode_only, 50) * 1000, 2),
        "library_search_p50_ms": round(pct(library, 50) * 1000, 2),
        "overhead_pct": round(100 * (p50 - b50) / b50, 1),
        "http_overhead_pct": round(100 * (p50 - pct(library, 50) * 1000) / b50, 1),
    }


def bench_cli(url: str, key: str | None, texts: list[str], args: argparse.Namespace) -> Any:
    exe = shutil.which("xlidx", path=str(REPO / ".venv" / "bin")) or "xlidx"
    env = {k: v for k, v in os.environ.items() if k not in ("XLIDX_SERVE_URL",)}
    served_env = {**env, **({"XLIDX_SERVE_API_KEY": key} if key else {})}
    timings: dict[str, list[float]] = {"cold": [], "serve": []}
    for i in range(args.cli_runs):
        text = texts[i % len(texts)]
        base = [exe, "query", "--index", args.index, "--mode", args.mode, "--k", str(args.k)]
        base += ["--json"]
        runs = {"cold": ([*base, text], env), "serve": ([*base, "--serve", url, text], served_env)}
        for name in ("cold", "serve") if i % 2 == 0 else ("serve", "cold"):
            cmd, cmd_env = runs[name]
            t = time.perf_counter()
            done = subprocess.run(cmd, env=cmd_env, capture_output=True, timeout=300)
            timings[name].append(time.perf_counter() - t)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr[-500:]!r}")
    cold, serve = pct(timings["cold"], 50), pct(timings["serve"], 50)
    return {
        "runs": args.cli_runs,
        "cold_p50_s": round(cold, 3),
        "serve_p50_s": round(serve, 3),
        "speedup": ratio(cold, serve),
    }


# -- report ---------------------------------------------------------------------------------------
def fmt(x: Any) -> str:
    return "n/a" if isinstance(x, float) and math.isnan(x) else str(x)


def markdown(report: dict[str, Any]) -> str:
    out: list[str] = []
    xl = report["xlidx_label"]
    if "embed" in report:
        e = report["embed"]
        peer = e["peer"]
        out += [
            f"### `/v1/embeddings`: {xl} vs {peer} (min cosine of the vectors: {e['min_cosine']})",
            "",
            "| clients | texts/req | xlidx texts/s | peer texts/s | ratio (>= 1.0) "
            "| xlidx p50 / p99 ms | peer p50 / p99 ms | p50 ratio (<= 1.0) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in e["cells"]:
            a, b = c["xlidx"], c[peer]
            out.append(
                f"| {c['concurrency']} | {c['texts_per_request']} | {a['texts_per_s']} "
                f"| {b['texts_per_s']} | {fmt(c['throughput_ratio'])} "
                f"| {a['p50_ms']} / {a['p99_ms']} | {b['p50_ms']} / {b['p99_ms']} "
                f"| {fmt(c['p50_ratio'])} |"
            )
        out.append("")
    if "encode" in report:
        e = report["encode"]
        out += [
            f"### Service vs sentence-transformers `encode` in process ({e['texts']} texts, "
            "batches of 32)",
            "",
            "| clients | service texts/s | in-process texts/s | ratio (>= 0.9) |",
            "|---:|---:|---:|---:|",
        ]
        for c, v in e["service_texts_per_s"].items():
            out.append(f"| {c} | {v} | {e['in_process_texts_per_s']} | {fmt(e['ratios'][c])} |")
        out.append("")
    if "translate" in report:
        t = report["translate"]
        names = [n for n in t["cells"][0] if isinstance(t["cells"][0][n], dict)]
        out += [
            f"### `/translate` {t['pair']}, one sentence per request: {names[0]} vs {names[1]} "
            f"(same tokens on 8 samples: {t['same_tokens']})",
            "",
            "| clients | xlidx sentences/s | peer sentences/s | ratio (>= 3.0) "
            "| xlidx p50 / p99 ms | peer p50 / p99 ms |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for c in t["cells"]:
            a, b = c[names[0]], c[names[1]]
            out.append(
                f"| {c['concurrency']} | {a['texts_per_s']} | {b['texts_per_s']} "
                f"| {fmt(c['throughput_ratio'])} | {a['p50_ms']} / {a['p99_ms']} "
                f"| {b['p50_ms']} / {b['p99_ms']} |"
            )
        out.append("")
    if "search" in report:
        s = report["search"]
        out += [
            f"### `/indices/{s['index']}/search` ({s['mode']}, {s['queries']} queries, one client)",
            "",
            "| service p50 ms | in-process p50 ms (prepare + raw engine requests) "
            "| of which encode | overhead (<= 10%) | library `Searcher.search` p50 ms "
            "| of the overhead, HTTP |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['service_p50_ms']} | {s['in_process_p50_ms']} "
            f"| {s['in_process_encode_p50_ms']} | {s['overhead_pct']}% "
            f"| {s['library_search_p50_ms']} | {s['http_overhead_pct']}% |",
            "",
        ]
    if "cli" in report:
        c = report["cli"]
        out += [
            f"### `xlidx query --serve` vs cold `xlidx query` ({c['runs']} runs each)",
            "",
            "| cold p50 s | --serve p50 s | speed-up |",
            "|---:|---:|---:|",
            f"| {c['cold_p50_s']} | {c['serve_p50_s']} | {fmt(c['speedup'])} |",
            "",
        ]
    out += [f"_{n}_" for n in report["notes"]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="the xlidx service")
    parser.add_argument("--api-key", default=os.environ.get("XLIDX_SERVE_API_KEY"))
    parser.add_argument("--xlidx-model", help="model name for /v1/embeddings (default: asked)")
    parser.add_argument("--model-dir", type=Path, default=E5_SMALL_DIR)
    parser.add_argument("--start-xlidx", action="store_true", help="start xlidx serve itself")
    parser.add_argument("--start-peers", action="store_true", help="start infinity and LT")
    parser.add_argument("--infinity-url", default="http://127.0.0.1:7997")
    parser.add_argument("--infinity-model", default=INFINITY_MODEL)
    parser.add_argument("--libretranslate-url", default="http://127.0.0.1:5000")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="no xlidx service: the xlidx side is the peers themselves (tests the harness)",
    )
    parser.add_argument(
        "--sections",
        default="embed,encode,translate,search,cli",
        help="comma-separated subset (search and cli need --index)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per measured cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds per cell")
    parser.add_argument(
        "--min-requests", type=int, default=10, help="a cell runs on until this many answers"
    )
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--batch-sizes", default="1,32", help="texts per embeddings request")
    parser.add_argument("--encode-texts", type=int, default=512)
    parser.add_argument("--encode-concurrency", default="1,8")
    parser.add_argument("--translate-concurrency", default="1,8,32")
    parser.add_argument("--translate-pair", default="en-fr")
    parser.add_argument("--index", help="an xlidx index for the search and cli sections")
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the full report here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sections = set(args.sections.split(","))
    notes: list[str] = []

    with ExitStack() as stack:
        inf_url, lt_url = args.infinity_url.rstrip("/"), args.libretranslate_url.rstrip("/")
        if args.start_peers:
            if "embed" in sections or (args.smoke and "encode" in sections):
                port = free_port()
                stack.enter_context(running(infinity_server(port)))
                inf_url = f"http://127.0.0.1:{port}"
            if "translate" in sections:
                port = free_port()
                langs = ",".join(args.translate_pair.split("-"))
                stack.enter_context(running(libretranslate_server(port, langs)))
                lt_url = f"http://127.0.0.1:{port}"
        url = args.url.rstrip("/")
        if args.start_xlidx and not args.smoke:
            port = free_port()
            stack.enter_context(
                running(xlidx_server(port, str(args.model_dir), args.api_key, args.index))
            )
            url = f"http://127.0.0.1:{port}"

        texts = embed_texts()
        english = english_texts()
        peer = EmbedSide(
            "infinity",
            f"{inf_url}/embeddings",
            args.infinity_model,
            prompt_in_text=True,
            key=None,
        )
        if args.smoke:
            ours = EmbedSide(
                "xlidx",
                f"{inf_url}/embeddings",
                args.infinity_model,
                prompt_in_text=True,
                key=None,
            )
            xl_translate: tuple[str, dict[str, str]] = (f"{lt_url}/translate", {})
            notes.append("SMOKE RUN: the xlidx side is the peers themselves; ratios ~1.0.")
        else:
            model = xlidx_model_name(url, args.xlidx_model, args.api_key)
            ours = EmbedSide(
                "xlidx", f"{url}/v1/embeddings", model, prompt_in_text=False, key=args.api_key
            )
            xl_translate = (f"{url}/translate", auth_headers(args.api_key))

        import torch

        report: dict[str, Any] = {
            "xlidx_label": "xlidx (smoke: infinity)" if args.smoke else "xlidx",
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
            },
            "settings": {
                "seconds_per_cell": args.seconds,
                "warmup_s_per_cell": args.warmup,
                "min_requests_per_cell": args.min_requests,
                "xlidx_url": url,
                "infinity_url": inf_url,
                "libretranslate_url": lt_url,
            },
        }
        if "embed" in sections:
            report["embed"] = bench_embeddings(ours, peer, texts, args)
        if "encode" in sections:
            report["encode"] = bench_encode(ours, texts, args)
        if "translate" in sections:
            sides = {"xlidx": xl_translate, "libretranslate": (f"{lt_url}/translate", {})}
            report["translate"] = bench_translate(sides, english, args)
        for name, fn in (("search", bench_search), ("cli", bench_cli)):
            if name not in sections:
                continue
            if not args.index:
                notes.append(f"{name}: skipped (needs --index NAME, an existing xlidx index).")
            elif args.smoke:
                notes.append(f"{name}: skipped in a smoke run (needs the xlidx service).")
            else:
                report[name] = fn(url, args.api_key, english, args)
        report["notes"] = notes

    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "notes"}, indent=2))
    print()
    print(markdown(report))


if __name__ == "__main__":
    main()
