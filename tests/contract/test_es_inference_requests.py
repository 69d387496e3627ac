"""The requests Elasticsearch 8.19's inference services send, sent byte for byte to a real
``xlidx serve``, and its replies read the way those services read them.

The cluster under the service is the Elasticsearch dev node (it holds the index); the
dev node itself has no inference API, so the requests are rebuilt here from Elasticsearch's
sources (x-pack/plugin/inference, 8.19), each named where it is used:

* ``openai`` (``url`` = the service's ``/v1/embeddings``, ``model_id`` = ``xlidx/NAME:passage``
  or ``:query``): ``OpenAiEmbeddingsRequest`` / ``OpenAiEmbeddingsRequestEntity``, the reply
  read by ``OpenAiEmbeddingsResponseEntity``, errors by ``ErrorMessageResponseEntity``;
* ``hugging_face`` (``url`` = the service's ``/embed``): ``HuggingFaceInferenceRequest`` /
  ``HuggingFaceInferenceRequestEntity``, ``HuggingFaceEmbeddingsResponseEntity``,
  ``HuggingFaceErrorResponseEntity``;
* ``custom``, as ``xlidx connect elasticsearch`` configures it
  (:func:`xlidx.backends.elasticsearch.inference.endpoint_body`): ``CustomRequest``,
  ``EmbeddingParameters`` / ``RequestParameters`` / ``InputTypeTranslator`` (the input type),
  ``TextEmbeddingResponseParser`` with ``MapPathExtractor``, ``CustomResponseHandler`` /
  ``CustomErrorResponseEntity``.

The model is the tiny one with prompts (``query: `` / ``passage: ``), so the passage and the
query role of a text give different vectors; each answer is compared with what the service
gives for ``xlidx/NAME:passage`` and ``xlidx/NAME:query`` named outright.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import drop_index
from tests.fixtures.serve import Served, serving
from xlidx.backends.elasticsearch import inference as inf
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

KEY = "s3cret-key-for-es"
MAX_ITEMS = 8
TEXTS = [
    "The cat sleeps on the warm windowsill.",
    "Le train de nuit part à neuf heures.",
    'Bread needs a "long" fermentation \\ patience.',
]
DIMS = 32
# what Elasticsearch's Apache client sends besides (HttpRequestSender); the service must not care
CLIENT_HEADERS = {"User-Agent": "Apache-HttpAsyncClient/4.1.5 (Java/21.0.5)"}


@pytest.fixture(scope="module")
def index(es_node: ConnectionSettings, tiny_embedder: Any) -> Iterator[str]:
    from xlidx.backends import open_backend
    from xlidx.documents import RawItem
    from xlidx.workflows.ingest import IngestOptions, ingest

    name = f"xlidx-test-esinf-{uuid.uuid4().hex[:8]}"
    items = [RawItem(origin=f"t:{i}", payload={"id": f"d{i}", "text": t})
             for i, t in enumerate(TEXTS)]  # fmt: skip
    ingest(items, backend=open_backend(es_node), embedder=tiny_embedder,
           options=IngestOptions(index=name, languages=("en", "fr")))  # fmt: skip
    yield name
    drop_index(es_node, name)


@pytest.fixture(scope="module")
def served(
    es_node: ConnectionSettings, index: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("serve-es-inference") / "serve.log"
    with serving(
        "--index", index, "--device", "cpu", "--api-key", KEY, "--max-items", str(MAX_ITEMS),
        log=log, env={"XLIDX_URL": es_node.urls[0]},
    ) as s:  # fmt: skip
        yield s


def _roles(served: Served, index: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The service's passage and query vectors of ``texts``, the roles named outright."""
    out = {}
    for role in ("passage", "query"):
        r = httpx.post(
            served.url + "/v1/embeddings",
            json={"model": f"xlidx/{index}:{role}", "input": list(texts)},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert r.status_code == 200, r.text
        out[role] = np.asarray([d["embedding"] for d in r.json()["data"]], dtype=np.float64)
    assert not np.allclose(out["passage"], out["query"], atol=1e-3)  # the prompts differ
    return out


def _es_json(entity: Mapping[str, Any]) -> bytes:
    """A request entity as Elasticsearch's XContent writes it: compact JSON, UTF-8, its
    fields in the order the entity's ``toXContent`` writes them."""
    return json.dumps(entity, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _send(url: str, headers: Mapping[str, str], body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers={**CLIENT_HEADERS, **headers}, timeout=60)


def _close(got: Sequence[Sequence[float]], want: np.ndarray) -> bool:
    rows = np.asarray(got, dtype=np.float64)
    return rows.shape == want.shape and bool(np.allclose(rows, want, atol=1e-5))


# -- openai ---------------------------------------------------------------------------------------


def _openai_request(
    texts: Sequence[str], model_id: str, *, user: str | None, dimensions: int | None
) -> tuple[dict[str, str], bytes]:
    """``OpenAiEmbeddingsRequest.createHttpRequest``: POST to the configured ``url``,
    ``Content-Type: application/json`` (XContentType.JSON), ``Authorization: Bearer <api_key>``
    (the secrets applier; ``OpenAI-Organization`` only with an ``organization_id``); the
    entity (``OpenAiEmbeddingsRequestEntity.toXContent``): ``input``, ``model``, then
    ``user`` when the task settings have one, ``dimensions`` when the user set them."""
    entity: dict[str, Any] = {"input": list(texts), "model": model_id}
    if user is not None:
        entity["user"] = user
    if dimensions is not None:
        entity["dimensions"] = dimensions
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    return headers, _es_json(entity)


def _openai_vectors(reply: Mapping[str, Any]) -> list[list[float]]:
    """``OpenAiEmbeddingsResponseEntity``: the objects of ``data``, in the order they come
    (their ``index`` is not read), each one's ``embedding`` (a float array; other fields
    skipped)."""
    return [list(map(float, d["embedding"])) for d in reply["data"]]


@pytest.mark.parametrize(("user", "dimensions"), [(None, None), ("app-42", DIMS)])
def test_openai_service(
    served: Served, index: str, user: str | None, dimensions: int | None
) -> None:
    want = _roles(served, index, TEXTS)
    for role in ("passage", "query"):
        headers, body = _openai_request(TEXTS, f"xlidx/{index}:{role}", user=user,
                                        dimensions=dimensions)  # fmt: skip
        r = _send(served.url + "/v1/embeddings", headers, body)
        assert r.status_code == 200, r.text
        reply = r.json()
        assert [d["index"] for d in reply["data"]] == [0, 1, 2]  # in order: ES reads the order
        got = _openai_vectors(reply)
        assert len(got) == len(TEXTS) and {len(v) for v in got} == {DIMS}
        assert _close(got, want[role]), role


# -- hugging_face ---------------------------------------------------------------------------------


def _hugging_face_request(texts: Sequence[str]) -> tuple[dict[str, str], bytes]:
    """``HuggingFaceInferenceRequest.createHttpRequest``: POST to the configured ``url``,
    ``Content-Type: application/json`` (XContentType.JSON.mediaTypeWithoutParameters()),
    ``Authorization: Bearer <api_key>`` (RequestUtils.createAuthBearerHeader); the entity
    (``HuggingFaceInferenceRequestEntity``) is ``{"inputs": [...]}`` and nothing else."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    return headers, _es_json({"inputs": list(texts)})


def _hugging_face_vectors(reply: Any) -> list[list[float]]:
    """``HuggingFaceEmbeddingsResponseEntity``: an array of float arrays, or an object whose
    ``embeddings`` is one."""
    rows = reply["embeddings"] if isinstance(reply, dict) else reply
    assert isinstance(rows, list) and all(isinstance(r, list) for r in rows)
    return [list(map(float, r)) for r in rows]


def test_hugging_face_service(served: Served, index: str) -> None:
    """The service's default model is its first ``--index``, in the passage role (the
    hugging_face service sends no model and no input type)."""
    want = _roles(served, index, TEXTS)
    headers, body = _hugging_face_request(TEXTS)
    r = _send(served.url + "/embed", headers, body)
    assert r.status_code == 200, r.text
    got = _hugging_face_vectors(r.json())
    assert len(got) == len(TEXTS) and {len(v) for v in got} == {DIMS}
    assert _close(got, want["passage"])


# -- custom -----------------------------------------------------------------------------------


def _custom_request(
    settings: Mapping[str, Any], texts: Sequence[str], es_input_type: str | None
) -> tuple[str, dict[str, str], bytes]:
    """``CustomRequest.createHttpRequest`` for a text_embedding endpoint: POST to ``url``
    (string placeholders replaced), ``Content-Type: application/json`` first, then each
    configured header with its ``${...}`` replaced from ``secret_parameters`` (and task
    settings: none here); the body is the ``request`` template with every ``${...}``
    replaced by a JSON value: ``${input}`` the texts (``RequestParameters``), ``${input_type}``
    the translation of the request's input type, or ``default`` for any input type the
    translation lacks (``EmbeddingParameters.taskTypeParameters``). The translation's keys
    can only be ``ingest``, ``search``, ``classification``, ``clustering``
    (``InputType.validateInputTypeTranslationValues``): the internal types fall to ``default``."""
    secrets = dict(settings.get("secret_parameters") or {})
    url = inf.render_custom(settings["url"], secrets, json_values=False)
    headers = {"Content-Type": "application/json"}
    for name, value in settings.get("headers", {}).items():
        headers[name] = inf.render_custom(value, secrets, json_values=False)
    translator = settings["input_type"]
    sent = translator["translation"].get(es_input_type or "", translator["default"])
    body = inf.render_custom(
        settings["request"], {**secrets, "input": list(texts), "input_type": sent},
        json_values=True,
    )  # fmt: skip
    return url, headers, body.encode("utf-8")


def _map_path(data: Any, path: str) -> Any:
    """``MapPathExtractor.extract``: ``$`` then ``.field`` (a map's value) and ``[*]`` (each
    element of a list, nested lists kept)."""
    assert path.startswith("$")
    rest = path[1:]
    if not rest:
        return data
    field = re.match(r"^\.([^.\[]+)(.*)$", rest)
    if field:
        assert isinstance(data, dict) and field.group(1) in data, (field.group(1), data)
        return _map_path(data[field.group(1)], "$" + field.group(2))
    star = re.match(r"^\[\*\](.*)$", rest)
    assert star and isinstance(data, list), (rest, type(data))
    return [_map_path(item, "$" + star.group(1)) for item in data]


def _custom_vectors(reply: Any, settings: Mapping[str, Any]) -> list[list[float]]:
    """``TextEmbeddingResponseParser.transform``: the list at ``json_parser.text_embeddings``,
    each entry a list of floats (``embedding_type`` float, the only one in 8.19)."""
    rows = _map_path(reply, settings["response"]["json_parser"]["text_embeddings"])
    assert isinstance(rows, list)
    return [list(map(float, r)) for r in rows]


def test_custom_service_as_connect_configures_it(served: Served, index: str) -> None:
    want = _roles(served, index, TEXTS)
    settings = inf.endpoint_body(index, served.url, api_key=KEY, dimensions=DIMS,
                                 similarity="cosinesimil")["service_settings"]  # fmt: skip
    got: dict[str | None, list[list[float]]] = {}
    # ES's input types: a REST call's `ingest`/`search`, the inference processor's
    # internal_ingest, a semantic or knn query's internal_search, and none at all
    for es_type in ("ingest", "search", "internal_ingest", "internal_search", None):
        url, headers, body = _custom_request(settings, TEXTS, es_type)
        assert url == served.url + "/v1/embeddings"
        assert headers == {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
        r = _send(url, headers, body)
        assert r.status_code == 200, (es_type, r.text)
        got[es_type] = _custom_vectors(r.json(), settings)
        assert len(got[es_type]) == len(TEXTS) and {len(v) for v in got[es_type]} == {DIMS}
    assert _close(got["ingest"], want["passage"])
    assert _close(got["search"], want["query"])
    assert not _close(got["ingest"], want["query"])  # ingest and search are told apart
    # what the translation does not name gets the default: the passage role
    for es_type in ("internal_ingest", "internal_search", None):
        assert _close(got[es_type], want["passage"]), es_type
    # the service's check that the template renders to what it expects
    _, _, body = _custom_request(settings, ["x"], "search")
    assert json.loads(body) == {"input": ["x"], "model": f"xlidx/{index}", "input_type": "search"}


# -- errors, as each service reads them -----------------------------------------------------------


def test_error_replies_are_json_the_services_read(served: Served, index: str) -> None:
    wrong = {"Authorization": "Bearer not-the-key"}
    # openai: ErrorMessageResponseEntity reads error.message
    headers, body = _openai_request(TEXTS, f"xlidx/{index}:passage", user=None, dimensions=None)
    for h, b, status in (
        ({**headers, **wrong}, body, 401),
        (headers, _openai_request(["x"] * (MAX_ITEMS + 1), f"xlidx/{index}:passage",
                                  user=None, dimensions=None)[1], 413),
        (headers, _openai_request(TEXTS, "xlidx/xlidx-test-none:query", user=None,
                                  dimensions=None)[1], 404),
        (headers, _openai_request(TEXTS, f"xlidx/{index}:passage", user=None,
                                  dimensions=DIMS + 1)[1], 400),
    ):  # fmt: skip
        r = _send(served.url + "/v1/embeddings", h, b)
        assert r.status_code == status, r.text
        message = r.json()["error"]["message"]
        assert isinstance(message, str) and message and "\n" not in message
    # hugging_face: HuggingFaceErrorResponseEntity reads error as a string
    headers, body = _hugging_face_request(TEXTS)
    for h, b, status in (
        ({**headers, **wrong}, body, 401),
        (headers, _hugging_face_request(["x"] * (MAX_ITEMS + 1))[1], 413),
    ):
        r = _send(served.url + "/embed", h, b)
        assert r.status_code == status, r.text
        assert isinstance(r.json()["error"], str) and r.json()["error"]
    # custom: CustomErrorResponseEntity reads any JSON object (and says so in its message)
    settings = inf.endpoint_body(index, served.url, api_key="not-the-key", dimensions=DIMS,
                                 similarity="cosinesimil")["service_settings"]  # fmt: skip
    url, headers, body = _custom_request(settings, TEXTS, "ingest")
    r = _send(url, headers, body)
    assert r.status_code == 401 and isinstance(r.json(), dict) and r.json()["error"]["message"]
    gone = inf.endpoint_body("xlidx-test-none", served.url, api_key=KEY, dimensions=DIMS,
                             similarity="cosinesimil")["service_settings"]  # fmt: skip
    url, headers, body = _custom_request(gone, TEXTS, "search")
    r = _send(url, headers, body)
    assert r.status_code == 404 and isinstance(r.json(), dict), r.text
