"""Build and install the argos package that xlidx and LibreTranslate both translate with.

No real argos package is on this machine and none can be downloaded (no argos index offline),
so this builds one with the test suite's builder (``tests/fixtures/argos_builder.py``), the same
way ``benchmarks/bench_translate.py`` does: an en→fr Marian-base-size model (d_model 512, 6+6
layers, FFN 2048, int8), untrained but "echo-length" (it emits as many tokens as the source has,
then stops), so every sentence costs the decoding steps a real translation would. The
sentencepiece vocabulary is trained on the Tatoeba en/fr sentences, so real English text
tokenizes into realistic pieces. A blank spaCy pipeline in the package lets argostranslate
split sentences offline (``ARGOS_CHUNK_TYPE=SPACY``).

Writes ``OUT/argos/translate-en_fr-0_0_1.argosmodel`` and installs it into
``OUT/argos-packages`` (use that as ``ARGOS_PACKAGES_DIR`` for both servers). It also builds the
reverse pair, fr→en: LibreTranslate, with fewer than two packages installed, tries to download
the package index at start and loops on ``URLError`` offline. Skips what exists. Run with the
repository's venv::

    .venv/bin/python benchmarks/peers/build_argos_package.py --out ~/.cache/xlidx/peers
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TATOEBA = Path("/work/shared/data/tatoeba")
PAIRS = (("en", "fr"), ("fr", "en"))


def corpus() -> list[str]:
    """Tatoeba sentences of both languages (all English files plus the French one)."""
    lines: list[str] = []
    for path in sorted(TATOEBA.glob("tatoeba.*")):
        if path.suffix in (".eng", ".fra"):
            lines += [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    if not lines:  # the builder's synthetic corpus, when the shared data is missing
        from tests.fixtures.argos_builder import synthetic_sentences, synthetic_words

        lines = synthetic_sentences(20_000, words=synthetic_words(), seed=1)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("~/.cache/xlidx/peers"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.fixtures.argos_builder import MARIAN_BASE, build_argos_package
    from xlidx.translation_packages import install_from_file, list_installed

    out = args.out.expanduser()
    packages_dir = out / "argos-packages"
    for src, tgt in PAIRS:
        package_dir = out / "argos"
        built = sorted(package_dir.glob(f"translate-{src}_{tgt}-*.argosmodel"))
        if built:
            package = built[0]
            print(f"package exists: {package}")
        else:
            start = time.perf_counter()
            package = build_argos_package(
                package_dir,
                src,
                tgt,
                size=MARIAN_BASE,
                corpus=corpus(),
                echo_length=True,
                quantization="int8",
                spacy_sbd=True,
            )
            print(f"built {package} in {time.perf_counter() - start:.1f} s")
        if not any(p.pair == (src, tgt) for p in list_installed(packages_dir)):
            installed = install_from_file(package, packages_dir)
            print(f"installed {installed.path}")
        else:
            print(f"{src}->{tgt} already installed in {packages_dir}")


if __name__ == "__main__":
    main()
