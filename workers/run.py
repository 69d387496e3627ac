"""Starting a worker: defaults per queue set, the holder configured before the pool forks,
the job store checked, then Celery's own worker loop.

Defaults per queue set (each overridable):

=====================  ============================  ===================  =========
queues                 concurrency                   prefetch multiplier  why
=====================  ============================  ===================  =========
includes ``embed``     1                             1                    one model copy per
                                                                          GPU; long tasks
``translate`` only     CPU cores                     1                    CPU-bound, long
``write`` only         4                             1                    waits on the cluster
=====================  ============================  ===================  =========
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence

from xlidx.config import ConnectionSettings, env_embed_model
from xlidx.errors import ConfigError
from xlidx.jobs.settings import QUEUES

DEVICES = ("auto", "cpu", "cuda", "mps")


def parse_queues(text: str) -> tuple[str, ...]:
    """``"embed, write"`` → the queues named, once each, checked (pure)."""
    queues = tuple(dict.fromkeys(q.strip() for q in text.split(",") if q.strip()))
    unknown = [q for q in queues if q not in QUEUES]
    if unknown or not queues:
        raise ConfigError(
            f"unknown queue(s) {', '.join(unknown) or '(none given)'}: "
            f"choose among {', '.join(QUEUES)}"
        )
    return queues


def worker_defaults(queues: tuple[str, ...], cpus: int) -> tuple[int, int]:
    """(concurrency, prefetch multiplier) for a worker on ``queues`` (pure). The multiplier
    is 1 everywhere: a message never waits in a worker's memory while its visibility timeout
    runs, so it is not handed to a second worker."""
    if "embed" in queues:
        return 1, 1
    if "translate" in queues:
        return max(1, cpus), 1
    return 4, 1


def run_worker(
    *,
    connection: ConnectionSettings,
    queues: Sequence[str],
    concurrency: int | None = None,
    device: str = "auto",
    model: str | None = None,
    name: str | None = None,
    loglevel: str = "info",
    announce: Callable[[str], None] = lambda _line: None,
) -> None:
    """Run a Celery worker on ``queues`` until it is stopped. ``model`` (default
    ``$XLIDX_EMBED_MODEL``) is checked here, cheaply, and preloaded by each pool process;
    ``announce`` hears one line on what starts."""
    chosen = tuple(queues)
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}: choose among {', '.join(DEVICES)}")
    spec = model or env_embed_model()
    if spec and "embed" in chosen:
        from xlidx.pipeline.embed import load_embedder

        load_embedder(spec, device="cpu")  # cheap checks only (path, cached hub model)

    from workers.holder import configure
    from xlidx.jobs.app import get_app, get_settings
    from xlidx.jobs.store import JobStore

    queue_settings = get_settings()
    JobStore(queue_settings.state_url).ping()
    n, prefetch = worker_defaults(chosen, os.cpu_count() or 1)
    configure(connection=connection, device=device, model=spec, queues=chosen)
    app = get_app()
    app.conf.worker_prefetch_multiplier = prefetch
    node = name or f"xlidx-{'-'.join(chosen)}-{os.getpid()}@{socket.gethostname()}"
    announce(
        f"xlidx worker {node}: queues {','.join(chosen)}, {concurrency or n} process(es), "
        f"device {device}, broker {queue_settings.display_broker}"
    )
    app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(chosen),
            "--concurrency",
            str(concurrency or n),
            "--hostname",
            node,
            "--loglevel",
            loglevel,
            "--without-mingle",
            "--without-gossip",
        ]
    )
