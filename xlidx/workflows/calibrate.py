"""Calibrate an index: re-estimate the per-language means of its vectors from its documents,
decide whether to center them (measured), and move the stored vectors to the new means (the
workflow behind ``xlidx index calibrate``; the work itself is
:func:`xlidx.indices.calibrate.calibrate`).

No document is re-embedded: each centered passage stores what undoes its centering. Nothing
here prints: progress goes to the ``progress(stage, done, total)`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xlidx.errors import IndexNotFound

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.indices.calibrate import Calibrated
    from xlidx.indices.manage import IndexState
    from xlidx.workflows.index import Index

Progress = Callable[[str, int, int], None]


def calibrate_version(
    backend: Backend,
    state: IndexState,
    *,
    device: str = "auto",
    embedder: Any = None,
    mode: str | None = None,
    full: bool = True,
    min_docs: int | None = None,
    sample_docs: int | None = None,
    progress: Progress | None = None,
) -> Calibrated | None:
    """Calibrate one index version (``state``) with its own model (``embedder``: one already
    loaded, else it loads on ``device`` when the query-side means need it).

    ``mode``: ``auto``, ``on`` or ``off`` (default: what the version has, else ``auto``).
    ``full``: every language's means afresh; otherwise only the languages now due get means,
    and the result is ``None`` when there is nothing to do. ``min_docs``, ``sample_docs``:
    default what the version has, else the defaults of :mod:`xlidx.pipeline.calibration`.
    """
    from xlidx.indices.calibrate import IndexModel, calibrate
    from xlidx.pipeline.calibration import check_mode

    if mode is not None:
        check_mode(mode)
    return calibrate(
        backend,
        state,
        encoder=IndexModel(state, device=device, embedder=embedder),
        mode=mode,
        full=full,
        min_docs=min_docs,
        sample_docs=sample_docs,
        progress=progress,
    )


def calibrate_index(
    index: Index,
    *,
    centering: str | None = None,
    min_docs: int | None = None,
    sample_docs: int | None = None,
    device: str = "auto",
    embedder: Any = None,
    progress: Progress | None = None,
) -> Calibrated:
    """Calibrate the version ``index`` points at, every language afresh (see
    :meth:`xlidx.Index.calibrate`)."""
    from xlidx.indices.manage import resolve
    from xlidx.pipeline.calibration import check_mode

    if centering is not None:
        check_mode(centering)
    current = resolve(index.backend, index.name)
    if current is None:
        raise IndexNotFound(f"no xlidx index named {index.name!r} to calibrate")
    done = calibrate_version(
        index.backend,
        current,
        device=device,
        embedder=embedder,
        mode=centering,
        min_docs=min_docs,
        sample_docs=sample_docs,
        progress=progress,
    )
    assert done is not None  # a full calibration always reports
    return done
