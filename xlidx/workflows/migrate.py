"""Build the next version of an xlidx index, judge it, then move the alias.

The next version takes a new model (every document re-embedded, :mod:`.reembed`), new vector
settings, or new language labels (:mod:`.redetect`); a plain migration copies the documents
as they are. Once every document arrived the new version is calibrated; with a
:class:`~xlidx.eval.gate.Gate`, both versions are then evaluated on the user's judgments and
the alias moves only when the new one is no worse than ``max_drop``. A refused migration
keeps the alias where it was and the new version for inspection: :func:`migrate` returns
it as a :class:`Migration` with ``moved`` false, and
:meth:`Index.migrate <xlidx.workflows.index.Index.migrate>` raises :class:`GateRefused`
carrying it (exit code 3 on the command line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlidx.errors import ConfigError, IndexNotFound, XlidxError

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.eval.gate import Gate, GateResult
    from xlidx.indices.calibrate import Calibrated
    from xlidx.indices.manage import IndexState
    from xlidx.spec import IndexSpec
    from xlidx.workflows.index import Index
    from xlidx.workflows.redetect import RedetectReport

EXIT_REFUSED = 3
Docs = Sequence[dict[str, Any]]
Transform = Callable[[Docs], list[dict[str, Any]]]


class GateRefused(XlidxError):
    """A gated migration measured a regression beyond ``max_drop``: the alias stays.
    ``migration`` is the whole :class:`Migration` (both versions' metrics, the report)."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, migration: Migration) -> None:
        super().__init__(message)
        self.migration = migration


@dataclass(frozen=True)
class Migration:
    """What :meth:`Index.migrate <xlidx.workflows.index.Index.migrate>` did and decided."""

    name: str
    from_index: str
    to_index: str
    documents: int
    moved: bool  # whether the alias now points at ``to_index``
    calibration: Calibrated | None = None  # the new version's (None: nothing to do)
    redetect: RedetectReport | None = None  # with ``redetect``
    gate: GateResult | None = None  # with a gate: both versions' metrics, the paired test
    report: str | None = None  # the gate's HTML report (None: it could not be written)
    warnings: tuple[str, ...] = ()

    @property
    def kept_for_rollback(self) -> str | None:
        return self.from_index if self.moved else None

    @property
    def refused(self) -> bool:
        """The gate said no: the alias still points at ``from_index``."""
        return self.gate is not None and not self.moved

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "from": self.from_index,
            "to": self.to_index,
            "documents": self.documents,
            "kept_for_rollback": self.kept_for_rollback,
            "moved": self.moved,
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_json()
        if self.redetect is not None:
            out["redetect"] = self.redetect.to_json()
        if self.gate is not None:
            out["gate"] = {**self.gate.to_json(), "report": self.report}
        return out

    def raise_if_refused(self) -> None:
        """Raise :class:`GateRefused` (carrying this migration) when the gate said no."""
        if self.refused:
            reason = self.gate.reason() if self.gate is not None else ""
            raise GateRefused(
                f"migration refused by the gate: {reason}; the alias {self.name} still points "
                f"at {self.from_index}, {self.to_index} is kept for inspection; report: "
                f"{self.report}",
                self,
            )


@dataclass
class Rebuild:
    """What the copy does to each batch of documents, and what the new version records."""

    embedding: dict[str, Any]
    languages: tuple[str, ...]
    detection: dict[str, Any]
    steps: list[Transform] = field(default_factory=list)
    embedder: Any = None  # the new model, loaded
    relabel: RedetectReport | None = None

    def transform(self, docs: Docs) -> list[dict[str, Any]]:
        out = list(docs)
        for step in self.steps:
            out = step(out)
        return out

    @property
    def doing(self) -> str:
        done = [w for w, on in (("relabelling", self.relabel), ("re-embedding", self.embedder))
                if on is not None]  # fmt: skip
        return ", ".join(done) or "copying"


@dataclass
class _Found:
    """What the steps inside the copy found out."""

    calibration: Calibrated | None = None
    gate: GateResult | None = None
    report: str | None = None
    warnings: list[str] = field(default_factory=list)


def migrate(
    index: Index,
    *,
    model: str | None = None,
    device: str = "auto",
    knn_engine: str | None = None,
    space: str | None = None,
    vector_index: str | None = None,
    redetect: bool = False,
    languages: Sequence[str] | None = None,
    gate: Gate | None = None,
    report: str | Path | None = None,
    shards: int | None = None,
    replicas: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Migration:
    """Build ``index``'s next version and move the alias to it (see the module docstring)."""
    from xlidx.indices.manage import migrate as copy_and_move
    from xlidx.indices.manage import resolve
    from xlidx.spec import check_shards

    check_shards(shards, replicas)
    step = on_step or (lambda _line: None)
    backend = index.backend
    current = resolve(backend, index.name)
    if current is None:
        raise IndexNotFound(f"no xlidx index named {index.name!r} to migrate")
    if languages is not None and not redetect:
        raise ConfigError("--languages applies with --redetect")
    x = current.xlidx_meta
    rebuild = plan_rebuild(x, model=model, device=device, redetect=redetect, languages=languages)
    spec = next_spec(backend, current, rebuild, knn_engine=knn_engine, space=space,
                     vector_index=vector_index, shards=shards, replicas=replicas)  # fmt: skip
    step(f"… migrating {current.index} ({rebuild.doing})")
    found = _Found()

    def prepare(new: str) -> None:
        step(f"… calibrating {new}")
        from xlidx.indices.manage import version_state
        from xlidx.pipeline.calibration import from_index_meta
        from xlidx.workflows.calibrate import calibrate_version

        previous = from_index_meta(x)
        # new vectors or labels: every mean afresh; a plain copy keeps the means it carries
        found.calibration = calibrate_version(
            backend,
            version_state(backend, new),
            device=device,
            embedder=rebuild.embedder,
            mode=previous.mode if previous else None,
            full=bool(rebuild.steps),
        )

    def decide(old: str, new: str) -> bool:
        assert gate is not None
        step(f"… evaluating {old} and {new} on {len(gate.queries)} queries")
        found.gate, found.report = judge(backend, gate, old, new, spec=spec, previous=x,
                                         report=report, warnings=found.warnings)  # fmt: skip
        return found.gate.passed

    done = copy_and_move(
        backend,
        spec,
        transform=rebuild.transform if rebuild.steps else None,
        decide=decide if gate is not None else None,
        prepare=prepare,
    )
    return Migration(
        name=done["name"], from_index=done["from"], to_index=done["to"],
        documents=done["documents"], moved=done["moved"], calibration=found.calibration,
        redetect=rebuild.relabel, gate=found.gate, report=found.report,
        warnings=tuple(found.warnings),
    )  # fmt: skip


def plan_rebuild(
    x: Mapping[str, Any],
    *,
    model: str | None,
    device: str,
    redetect: bool,
    languages: Sequence[str] | None,
) -> Rebuild:
    """The steps for the index whose ``_meta.xlidx`` is ``x``: relabel (``redetect``, among
    ``languages``, every language by default), then re-embed (``model``)."""
    rebuild = Rebuild(
        embedding=dict(x.get("embedding", {})),
        languages=tuple(x.get("languages", [])),
        detection=dict(x.get("detection") or {}),
    )
    if redetect:
        from xlidx.pipeline.detect import Detector, parse_languages
        from xlidx.workflows.redetect import RedetectReport, redetector

        # every language unless told otherwise: the index's old restriction is usually what
        # mislabelled it
        rebuild.languages = parse_languages(languages) if languages is not None else ()
        detector = Detector(rebuild.languages)
        rebuild.detection = detector.describe()
        translator = None
        if x.get("translate_to"):
            from xlidx.pipeline.translate import Translator
            from xlidx.pipeline.translation_cache import TranslationCache

            translator = Translator(device=device, cache=TranslationCache())
        rebuild.relabel = RedetectReport()
        rebuild.steps.append(redetector(x, detector, translator, rebuild.relabel))
    if model is not None:
        from xlidx.pipeline.embed import load_embedder
        from xlidx.pipeline.fingerprint import model_source
        from xlidx.workflows.reembed import reembedder

        rebuild.embedder = load_embedder(model, device=device)
        rebuild.embedding = {**rebuild.embedder.describe(),
                             "source": model_source(rebuild.embedder)}  # fmt: skip
        rebuild.steps.append(reembedder(rebuild.embedder, x))
    return rebuild


def next_spec(
    backend: Backend,
    current: IndexState,
    rebuild: Rebuild,
    *,
    knn_engine: str | None,
    space: str | None,
    vector_index: str | None,
    shards: int | None,
    replicas: int | None,
) -> IndexSpec:
    """The spec of the next version: the current one's, with what changes (its primary
    shards and replicas unless ``shards``/``replicas`` say otherwise)."""
    from xlidx.documents import DEFAULT_TEXT_FIELDS
    from xlidx.spec import IndexSpec, VectorSpec, shards_of

    x = current.xlidx_meta
    vector = VectorSpec.from_meta(
        x.get("vector", {}), knn_engine=knn_engine, space_type=space, index_type=vector_index
    )
    old_shards, old_replicas = shards_of(backend.index_settings(current.index))
    return IndexSpec(
        name=current.alias,
        embedding=rebuild.embedding,
        text_fields=tuple(x.get("text_fields", DEFAULT_TEXT_FIELDS)),
        languages=rebuild.languages,
        translate_to=tuple(x.get("translate_to", [])),
        vector=vector,
        detection=rebuild.detection,
        translation_packages=tuple(x.get("translation_packages", [])),
        shards=shards if shards is not None else old_shards,
        replicas=replicas if replicas is not None else old_replicas,
    )


def judge(
    backend: Backend,
    gate: Gate,
    old: str,
    new: str,
    *,
    spec: IndexSpec,
    previous: Mapping[str, Any],
    report: str | Path | None,
    warnings: list[str],
) -> tuple[GateResult, str | None]:
    """Evaluate both versions with ``gate`` and write the HTML report of both (``report``,
    default ``./xlidx-gate-NEW.html``): the result and where the report went. A report that
    cannot be written is a warning: the decision stands without its page."""
    from xlidx.eval.gate import run_gate
    from xlidx.eval.reporting import report_data, write_report

    result, reports = run_gate(backend, gate, old, new)
    data = report_data(
        f"xlidx migrate gate: {spec.name}",
        reports,
        gate.queries,
        gate.qrels,
        settings={
            "index": spec.name, "old version": old, "new version": new,
            "old model": previous.get("embedding", {}).get("model"),
            "new model": spec.embedding.get("model"), "mode": gate.mode,
            "metric": gate.metric, "max drop": gate.max_drop,
            "decision": "moved the alias" if result.passed else "refused",
            "reason": result.reason(),
        },
        labels=[f"{gate.mode} · {old}", f"{gate.mode} · {new}"],
        comparison=result.comparison,
        main_metric=gate.metric,
    )  # fmt: skip
    try:
        return result, str(write_report(report or Path(f"xlidx-gate-{new}.html"), data))
    except ConfigError as exc:
        warnings.append(str(exc))
        return result, None
