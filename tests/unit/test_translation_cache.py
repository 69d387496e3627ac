"""The SQLite sentence-translation cache."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from xlidx.errors import ModelError
from xlidx.pipeline.translation_cache import TranslationCache, default_cache_path, text_key


def test_constructor_does_no_io(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "cache.sqlite3"
    TranslationCache(path)
    assert not path.parent.exists()


def test_default_path_follows_xlidx_home(tmp_path: Path) -> None:
    assert default_cache_path({"XLIDX_HOME": str(tmp_path)}) == (
        tmp_path / "cache" / "translations.sqlite3"
    )
    assert default_cache_path({}).parts[-3:] == ("xlidx", "cache", "translations.sqlite3")


def test_store_then_lookup_counts_hits_and_misses(tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path / "c.sqlite3")
    assert cache.lookup(["Bonjour.", "Merci."], "fr", "en", "m@1") == {}
    assert (cache.hits, cache.misses) == (0, 2)
    cache.store({"Bonjour.": "Hello.", "Merci.": "Thanks."}, "fr", "en", "m@1")
    assert cache.lookup(["Bonjour.", "Merci.", "Non."], "fr", "en", "m@1") == {
        "Bonjour.": "Hello.",
        "Merci.": "Thanks.",
    }
    assert cache.stats() == {"hits": 2, "misses": 3}
    assert len(cache) == 2
    cache.close()


def test_key_includes_languages_and_model(tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path / "c.sqlite3")
    cache.store({"Hallo.": "Hello."}, "de", "en", "m@1")
    assert cache.get("Hallo.", "de", "en", "m@1") == "Hello."
    assert cache.get("Hallo.", "de", "en", "m@2") is None
    assert cache.get("Hallo.", "de", "fr", "m@1") is None
    assert cache.get("Hallo.", "nl", "en", "m@1") is None
    cache.close()


def test_rows_are_keyed_by_sha256(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = TranslationCache(path)
    cache.store({"Salut.": "Hi."}, "fr", "en", "m")
    cache.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT text_sha256, translation FROM translations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert rows == [(text_key("Salut."), "Hi.")]
    assert mode == "wal"


def test_many_keys_span_several_queries(tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path / "c.sqlite3")
    items = {f"s{i}": f"t{i}" for i in range(1234)}
    cache.store(items, "fr", "en", "m")
    assert cache.lookup(items, "fr", "en", "m") == items
    cache.close()


def test_threads_share_one_file(tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path / "c.sqlite3")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                cache.store({f"{n}-{i}": f"T{n}-{i}"}, "fr", "en", "m")
                assert cache.get(f"{n}-{i}", "fr", "en", "m") == f"T{n}-{i}"
            cache.close()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 80
    cache.close()


def _child_store(path: str, n: int) -> None:
    cache = TranslationCache(path)
    cache.store({f"p{n}-{i}": str(i) for i in range(50)}, "fr", "en", "m")
    cache.close()


def test_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_child_store, args=(str(path), n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = TranslationCache(path)
    assert len(cache) == 150
    cache.close()


def test_unusable_file_is_a_model_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = TranslationCache(blocker / "c.sqlite3")  # parent is a file
    with pytest.raises(ModelError, match="translation cache") as info:
        cache.lookup(["a"], "fr", "en", "m")
    assert "\n" not in str(info.value)
