"""``xlidx serve`` as a real uvicorn process, with real clients (the official ``openai``
client, httpx), serving the tiny sentence-transformers model and the test argos packages:
the formats, the errors, batching under load, back-pressure, keys, TLS and SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.fixtures.serve import Served, serving
from tests.fixtures.translation import EN_FR_PAIRS, FR_EN_PAIRS
from xlidx.pipeline.embed import Embedder

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def served(
    tiny_st_model: Path, argos_packages_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    logs = tmp_path_factory.mktemp("serve")
    env = {"ARGOS_PACKAGES_DIR": str(argos_packages_dir), "XLIDX_HOME": str(logs / "home")}
    with serving(
        "--model",
        str(tiny_st_model),
        "--device",
        "cpu",
        "--max-items",
        "64",
        "--max-body-bytes",
        "100000",
        "--max-chars",
        "20000",
        log=logs / "serve.log",
        env=env,
    ) as s:
        yield s


def _vectors(embedder: Embedder, texts: list[str], *, query: bool) -> np.ndarray:
    rows = embedder.encode_query(texts) if query else embedder.encode_document(texts)
    return np.asarray(rows, dtype=np.float64)


def test_openai_client_float_and_base64(served: Served, tiny_embedder: Embedder) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    texts = ["The cat sleeps.", "Le chat dort.", "Die Katze schläft."]
    want = _vectors(tiny_embedder, texts, query=False)
    # float asked for, and the client's default (it asks for base64 and decodes it)
    for r in (
        client.embeddings.create(model="tiny-st", input=texts, encoding_format="float"),
        client.embeddings.create(model="tiny-st", input=texts),
    ):
        got = np.asarray([d.embedding for d in r.data], dtype=np.float64)
        assert [d.index for d in r.data] == [0, 1, 2] and r.model == "tiny-st"
        assert np.allclose(got, want, atol=1e-5)
    # one string as input
    one = client.embeddings.create(model="tiny-st", input="The cat sleeps.")
    assert np.allclose(one.data[0].embedding, want[0], atol=1e-5)
    # input_type picks the role: the query prompt gives another vector
    q = httpx.post(
        served.url + "/v1/embeddings",
        json={"model": "tiny-st", "input": ["The cat sleeps."], "input_type": "search"},
    ).json()
    assert np.allclose(
        q["data"][0]["embedding"],
        _vectors(tiny_embedder, ["The cat sleeps."], query=True)[0],
        atol=1e-5,
    )
    raw = httpx.post(
        served.url + "/v1/embeddings",
        json={"model": "tiny-st", "input": "x", "encoding_format": "base64"},
    ).json()
    assert len(np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), "<f4")) == 32


def test_tei_embed_and_bad_requests(served: Served, tiny_embedder: Embedder) -> None:
    r = httpx.post(served.url + "/embed", json={"inputs": ["a cat", "un chat"]})
    assert r.status_code == 200
    assert np.allclose(
        r.json(), _vectors(tiny_embedder, ["a cat", "un chat"], query=False), atol=1e-5
    )
    assert len(httpx.post(served.url + "/embed", json={"inputs": "a cat"}).json()) == 1

    def error(path: str, status: int, **kw: object) -> str:
        r = httpx.post(served.url + path, **kw)  # type: ignore[arg-type]
        assert r.status_code == status, r.text
        assert "Traceback" not in r.text and "\n" not in r.text
        err = r.json()["error"]
        return str(err["message"] if isinstance(err, dict) else err)

    headers = {"content-type": "application/json"}
    assert error("/embed", 400, content=b"{not json", headers=headers).startswith("invalid JSON")
    assert "inputs" in error("/embed", 422, json={"inputs": [1, 2]})
    assert "input" in error("/v1/embeddings", 422, json={"model": "tiny-st"})
    assert "not served" in error("/v1/embeddings", 404, json={"model": "gpt-9", "input": "x"})
    assert "input_type" in error("/embed", 422, json={"inputs": ["x"], "input_type": "sideways"})
    assert "64" in error("/embed", 413, json={"inputs": ["x"] * 65})
    assert "20000" in error("/embed", 413, json={"inputs": ["y" * 10001, "y" * 10000]})
    assert "dimensions" in error(
        "/v1/embeddings", 400, json={"model": "tiny-st", "input": "x", "dimensions": 7}
    )
    # bodies over --max-body-bytes, told by their length or as they stream (chunked)
    big = b'{"inputs": ["' + b"x" * 120_000 + b'"]}'
    assert "100000 bytes" in error("/embed", 413, content=big, headers=headers)
    chunks = (big[i : i + 10_000] for i in range(0, len(big), 10_000))
    assert "100000 bytes" in error("/embed", 413, content=chunks, headers=headers)
    assert error("/nowhere", 404, json={}) == "Not Found"  # unknown routes: the same shape
    # no texts: no vectors
    assert httpx.post(served.url + "/embed", json={"inputs": []}).json() == []
    empty = httpx.post(served.url + "/v1/embeddings", json={"model": "tiny-st", "input": []})
    assert empty.status_code == 200 and empty.json()["data"] == []
    # OpenAI's error shape under /v1, which its client reads
    from openai import NotFoundError, OpenAI

    client = OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(NotFoundError, match="not served"):
        client.embeddings.create(model="gpt-9", input="x")


def test_concurrent_load_is_answered_in_order(served: Served, tiny_embedder: Embedder) -> None:
    """64 clients at once, 1 to 40 texts each: every answer is the text's own vector, in
    input order, whatever batch it rode in; the batches were bigger than one request."""
    texts = [f"sentence number {i} about cats and trains" for i in range(400)]
    want = _vectors(tiny_embedder, texts, query=False)

    async def one(client: httpx.AsyncClient, lo: int, n: int) -> tuple[int, list[list[float]]]:
        r = await client.post("/embed", json={"inputs": texts[lo : lo + n]})
        assert r.status_code == 200, r.text
        return lo, r.json()

    async def load() -> list[tuple[int, list[list[float]]]]:
        async with httpx.AsyncClient(base_url=served.url, timeout=120) as client:
            jobs = [one(client, (i * 37) % 360, 1 + i % 40) for i in range(64)]
            return await asyncio.gather(*jobs)

    for lo, vectors in asyncio.run(load()):
        assert np.allclose(vectors, want[lo : lo + len(vectors)], atol=1e-5)
    metrics = httpx.get(served.url + "/metrics").text
    assert 'xlidx_serve_requests_total{endpoint="/embed",status="200"}' in metrics
    assert "xlidx_serve_batch_size_bucket" in metrics and "xlidx_serve_queue_depth" in metrics
    assert 'xlidx_serve_model_load_seconds{model="tiny-st"}' in metrics
    sums = [line for line in metrics.splitlines() if line.startswith("xlidx_serve_batch_size_")]
    label = '{queue="tiny-st:passage"}'
    count = next(
        float(x.split()[-1]) for x in sums if x.startswith(f"xlidx_serve_batch_size_count{label}")
    )
    total = next(
        float(x.split()[-1]) for x in sums if x.startswith(f"xlidx_serve_batch_size_sum{label}")
    )
    assert total / count > 2  # texts of several requests shared model calls


def test_translate_detect_languages_in_libretranslate_shapes(served: Served) -> None:
    fr, en = FR_EN_PAIRS[0]
    r = httpx.post(served.url + "/translate", json={"q": fr, "source": "fr", "target": "en"})
    assert r.json() == {"translatedText": en}
    many = [p[0] for p in EN_FR_PAIRS[:3]]
    r = httpx.post(served.url + "/translate", json={"q": many, "source": "en", "target": "fr"})
    assert r.json() == {"translatedText": [p[1] for p in EN_FR_PAIRS[:3]]}
    auto = httpx.post(
        served.url + "/translate",
        timeout=120,
        json={"q": FR_EN_PAIRS[1][0], "source": "auto", "target": "en"},
    ).json()
    assert auto["translatedText"] == FR_EN_PAIRS[1][1]
    assert auto["detectedLanguage"]["language"] == "fr"
    det = httpx.post(
        served.url + "/detect", timeout=120, json={"q": "Le train de nuit part à neuf heures."}
    ).json()
    assert det[0]["language"] == "fr" and 0 < det[0]["confidence"] <= 100
    langs = {row["code"]: row for row in httpx.get(served.url + "/languages").json()}
    assert set(langs) == {"de", "en", "es", "fr"} and langs["fr"]["name"] == "French"
    assert "es" in langs["de"]["targets"]  # through English
    bad = httpx.post(served.url + "/translate", json={"q": "x", "source": "fr", "target": "ja"})
    assert bad.status_code == 400 and "no translation package" in bad.json()["error"]


def test_full_queue_429_then_sigterm_drains(tiny_st_model: Path, tmp_path: Path) -> None:
    """A batch waits 1.5 s to fill: a queue holding 8 texts refuses more with 429, the header
    OpenSearch's connectors retry on, and Retry-After. SIGTERM with requests in flight: each is
    answered, and the process exits 0."""
    with serving(
        "--model",
        str(tiny_st_model),
        "--device",
        "cpu",
        "--max-wait-ms",
        "1500",
        "--max-queued",
        "8",
        "--max-items",
        "8",
        log=tmp_path / "s.log",
    ) as s:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
                first = asyncio.ensure_future(client.post("/embed", json={"inputs": ["a"] * 8}))
                await asyncio.sleep(0.3)
                second = await client.post(
                    "/v1/embeddings", json={"model": "tiny-st", "input": ["b"]}
                )
                return [await first, second]

        ok, full = asyncio.run(burst())
        assert ok.status_code == 200 and len(ok.json()) == 8
        assert full.status_code == 429, full.text
        assert full.headers["x-amzn-ErrorType"] == "ThrottlingException"
        assert int(full.headers["Retry-After"]) >= 1
        assert "queue is full" in full.json()["error"]["message"]

        async def in_flight() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
                jobs = [
                    asyncio.ensure_future(client.post("/embed", json={"inputs": [f"t{i}"]}))
                    for i in range(4)
                ]
                await asyncio.sleep(0.5)  # they wait in the batch
                s.proc.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*jobs))

        answers = asyncio.run(in_flight())
        assert [r.status_code for r in answers] == [200] * 4
        assert s.proc.wait(60) == 0, s.output()
        assert "Traceback" not in s.output()


def test_api_keys_and_tls(tiny_st_model: Path, tmp_path: Path) -> None:
    """Keys from --api-key and XLIDX_SERVE_API_KEYS; 401 without one or with a wrong one;
    /health open; keys never in the log; HTTPS with uvicorn's certificate options."""
    from tests.fixtures.tls import self_signed

    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(cafile=str(cert))
    with serving(
        "--model",
        str(tiny_st_model),
        "--device",
        "cpu",
        "--api-key",
        KEY,
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        env={"XLIDX_SERVE_API_KEYS": "second-key, third-key"},
        log=tmp_path / "s.log",
        scheme="https",
        verify=tls,
    ) as s:
        with httpx.Client(base_url=s.url, verify=tls) as client:
            assert client.get("/health").status_code == 200
            body = {"inputs": ["x"]}
            assert client.post("/embed", json=body).status_code == 401
            bad = client.post(
                "/embed", content=b"{not json", headers={"content-type": "application/json"}
            )
            assert bad.status_code == 401  # the key first: no body is read without one
            wrong = client.post("/embed", json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
            for k in (KEY, "third-key"):
                ok = client.post("/embed", json=body, headers={"Authorization": f"Bearer {k}"})
                assert ok.status_code == 200
            assert client.get("/metrics").status_code == 401
        from openai import AuthenticationError, OpenAI

        with httpx.Client(verify=tls) as http:
            good = OpenAI(base_url=s.url + "/v1", api_key=KEY, http_client=http, max_retries=0)
            assert len(good.embeddings.create(model="tiny-st", input="x").data) == 1
            bad = OpenAI(base_url=s.url + "/v1", api_key="nope", http_client=http, max_retries=0)
            with pytest.raises(AuthenticationError):
                bad.embeddings.create(model="tiny-st", input="x")
        t0 = time.monotonic()
        assert s.stop() == 0
        assert time.monotonic() - t0 < 20  # idle keep-alive connections do not hold the stop
    log = s.output()
    assert KEY not in log and "third-key" not in log and "/embed" in log


def test_bad_settings_fail_in_one_line(tiny_st_model: Path) -> None:
    from tests.conftest import run_cli

    for args, message in (
        (["--model", "/nonexistent/model"], "model path does not exist"),
        (
            ["--model", str(tiny_st_model), "--max-items", "10", "--max-queued", "5"],
            "must not pass --max-queued",
        ),
        (["--model", str(tiny_st_model), "--ssl-certfile", "/nonexistent.pem"], "TLS needs both"),
    ):
        proc = run_cli("serve", *args)
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
