"""Translation throughput: xlidx's batched Translator vs argostranslate's per-text translate().

Both run the same installed argos package: a Marian-base-size model (d_model 512, 6+6
layers, FFN 2048, ~8k sentencepiece vocabulary, int8) built offline by
``tests/fixtures/argos_builder.py`` and cached under ``$XLIDX_HOME/bench/``. The model is
untrained but "echo-length" (it decodes as many tokens as the source sentence has, then
stops), so each sentence costs the decoding steps a real translation would.

Measured, on the same synthetic multi-sentence documents:

* ``xlidx_batched``: ``Translator.translate(docs)``, sentences batched across documents;
* ``xlidx_per_text``: the same Translator called once per document (batching switched off);
* ``argos_per_text``: ``argostranslate.translate.translate(doc, src, tgt)`` once per document,
  in a subprocess (argos reads its settings at import), offline thanks to
  ``ARGOS_CHUNK_TYPE=SPACY`` and a blank spaCy pipeline saved in the package. Its beam size
  is set to xlidx's (argos's default is 4, which would make it slower still).

Run from the repository root::

    .venv/bin/python benchmarks/bench_translate.py [--docs 2000] [--baseline-docs 200]

It prints one JSON object; ``ratio_docs_per_s`` is xlidx_batched / argos_per_text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SRC, TGT = "de", "en"
BUILD_TAG = "marian-base-echo-v1"  # bump when the builder's output changes
BEAM = 2


def bench_home() -> Path:
    """``$XLIDX_HOME/bench`` (``~/.cache/xlidx/bench``)."""
    return Path(os.environ.get("XLIDX_HOME") or "~/.cache/xlidx").expanduser() / "bench"


def ensure_package(home: Path) -> tuple[Path, float]:
    """The cached benchmark package file, built when missing; (path, build seconds)."""
    from tests.fixtures.argos_builder import (
        MARIAN_BASE,
        build_argos_package,
        synthetic_sentences,
        synthetic_words,
    )

    target_dir = home / BUILD_TAG
    built = sorted(target_dir.glob("*.argosmodel"))
    if built:
        return built[0], 0.0
    start = time.perf_counter()
    corpus = synthetic_sentences(20_000, words=synthetic_words(), seed=1)
    path = build_argos_package(
        target_dir,
        SRC,
        TGT,
        size=MARIAN_BASE,
        corpus=corpus,
        echo_length=True,
        quantization="int8",
        spacy_sbd=True,
    )
    return path, time.perf_counter() - start


def make_docs(n: int, *, seed: int = 7) -> list[str]:
    """n documents of 1-4 distinct synthetic sentences (4-14 words each)."""
    from tests.fixtures.argos_builder import synthetic_sentences, synthetic_words

    rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
    sizes = [rng.randint(1, 4) for _ in range(n)]
    sentences = iter(
        synthetic_sentences(
            sum(sizes), words=synthetic_words(), min_words=4, max_words=14, seed=seed
        )
    )
    return [" ".join(next(sentences) for _ in range(k)) for k in sizes]


def rates(n_docs: int, n_sentences: int, seconds: float) -> dict[str, float]:
    return {
        "docs": n_docs,
        "sentences": n_sentences,
        "seconds": round(seconds, 3),
        "docs_per_s": round(n_docs / seconds, 2),
        "sentences_per_s": round(n_sentences / seconds, 2),
    }


def run_xlidx(
    packages_dir: Path, docs: list[str], *, batched: bool
) -> tuple[dict[str, Any], list[str]]:
    from xlidx.pipeline.sentences import split_sentences
    from xlidx.pipeline.translate import Translator

    translator = Translator(packages_dir, device="cpu", beam_size=BEAM)
    translator.translate(["Warm up."], SRC, TGT)  # loads the model outside the timing
    start = time.perf_counter()
    if batched:
        out = translator.translate(docs, SRC, TGT)
    else:
        out = [translator.translate([d], SRC, TGT)[0] for d in docs]
    seconds = time.perf_counter() - start
    n_sentences = sum(len(split_sentences(d)) for d in docs)
    result = rates(len(docs), n_sentences, seconds)
    result["translate_batch_calls"] = translator.model_calls - 1
    return result, out


def run_argos(packages_dir: Path, docs: list[str], work: Path) -> tuple[dict[str, Any], list[str]]:
    """Time argostranslate in a subprocess with an isolated, offline configuration."""
    docs_file, out_file = work / "docs.json", work / "argos-out.json"
    docs_file.write_text(json.dumps(docs))
    cache_home = work / "xdg-cache"
    # argos would try to download spaCy's xx_sent_ud_sm on import unless it looks cached
    (cache_home / "argos-translate" / "spacy" / "senter" / "model").mkdir(
        parents=True, exist_ok=True
    )
    env = {
        **os.environ,
        "ARGOS_PACKAGES_DIR": str(packages_dir),
        "ARGOS_CHUNK_TYPE": "SPACY",
        "ARGOS_DEVICE_TYPE": "cpu",
        "ARGOS_BEAM_SIZE": str(BEAM),
        "ARGOS_COMPUTE_TYPE": "int8",
        "XDG_CACHE_HOME": str(cache_home),
        "XDG_DATA_HOME": str(work / "xdg-data"),
        "XDG_CONFIG_HOME": str(work / "xdg-config"),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, __file__, "--argos-worker", str(docs_file), str(out_file)]
    subprocess.run(cmd, env=env, check=True, cwd=REPO, timeout=1800)
    result = json.loads(out_file.read_text())
    return result["rates"], result["outputs"]


def argos_worker(docs_file: Path, out_file: Path) -> None:
    """Runs inside the subprocess: argostranslate's translate(), one document at a time."""
    from argostranslate import translate as argos_translate

    from xlidx.pipeline.sentences import split_sentences

    docs = json.loads(docs_file.read_text())
    argos_translate.translate("Warm up.", SRC, TGT)  # loads the model and spaCy
    start = time.perf_counter()
    outputs = [argos_translate.translate(d, SRC, TGT) for d in docs]
    seconds = time.perf_counter() - start
    n_sentences = sum(len(split_sentences(d)) for d in docs)
    out_file.write_text(
        json.dumps({"rates": rates(len(docs), n_sentences, seconds), "outputs": outputs})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents for xlidx batched")
    parser.add_argument(
        "--baseline-docs", type=int, default=200, help="documents for the per-text runs"
    )
    parser.add_argument("--argos-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.argos_worker:
        argos_worker(*args.argos_worker)
        return

    from xlidx.translation_packages import install_from_file

    home = bench_home()
    package_file, build_s = ensure_package(home)
    docs = make_docs(args.docs)
    baseline = docs[: args.baseline_docs]
    with tempfile.TemporaryDirectory(prefix="xlidx-bench-") as tmp:
        work = Path(tmp)
        packages_dir = work / "packages"
        install_from_file(package_file, packages_dir)
        batched, batched_out = run_xlidx(packages_dir, docs, batched=True)
        per_text, _ = run_xlidx(packages_dir, baseline, batched=False)
        argos, argos_out = run_argos(packages_dir, baseline, work)

    import ctranslate2

    # argos glues a paragraph's sentences together; compare the decoded tokens, not the spaces
    same = sum(
        "".join(a.split()) == "".join(b.split())
        for a, b in zip(argos_out, batched_out, strict=False)
    )
    summary = {
        "package": package_file.name,
        "model": "Marian base size (d512, 6+6 layers, FFN 2048, ~8k vocab), int8, echo-length",
        "build_seconds": round(build_s, 1),
        "cpu_count": os.cpu_count(),
        "ctranslate2": ctranslate2.__version__,
        "beam_size": BEAM,
        "xlidx_batched": batched,
        "xlidx_per_text": per_text,
        "argos_per_text": argos,
        "same_tokens_as_argos": f"{same}/{len(argos_out)}",
        "ratio_docs_per_s": round(batched["docs_per_s"] / argos["docs_per_s"], 2),
        "ratio_batching_alone": round(batched["docs_per_s"] / per_text["docs_per_s"], 2),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
