"""``xlidx ingest --from-index SRC --index DST --follow``: renders :meth:`xlidx.Index.follow`
(the workflow is :mod:`xlidx.workflows.follow`).

Output: with ``--json``, stdout is JSON Lines: one ``{"type": "poll", ...}`` object per poll
(what it read, wrote and deleted, ``lag_seconds``, ``waiting``), then one
``{"type": "summary", ...}`` when the follower stops. Without it, a progress bar on a
terminal (stage, documents read, lag, documents waiting); elsewhere (a service's journal)
one line on stderr per poll that carried or deleted something, and the summary on stdout.
Exit codes are ingest's: 130 / 143 after SIGINT / SIGTERM, 1 for an error (one line).
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from xlidx.cli._state import err, out
from xlidx.cli.ingest import _progress_bar, _stop_on_signals, _Watch
from xlidx.config import format_duration
from xlidx.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from xlidx.pipeline.options import IngestOptions
    from xlidx.workflows import Index
    from xlidx.workflows.follow import FollowOptions, FollowSummary, PollReport

DEFAULT_INTERVAL = "5s"
DEFAULT_RECONCILE = "60s"


def follow_options(
    *,
    follow: bool,
    from_index: str | None,
    queue: bool,
    interval: str | None,
    since_field: str | None,
    reconcile_every: str | None,
    from_start: bool,
) -> FollowOptions | None:
    """The follow flags, checked; None without ``--follow``."""
    from xlidx.config import parse_duration
    from xlidx.workflows.follow import FollowOptions

    if not follow:
        flags = {"--interval": interval, "--since-field": since_field,
                 "--reconcile-every": reconcile_every}  # fmt: skip
        given = [name for name, value in flags.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --follow")
        return None
    if from_index is None:
        raise ConfigError("--follow follows another index: give --from-index SRC, not a PATH")
    if queue:
        raise ConfigError(
            "--follow runs the pipeline in this process; --follow --queue is not supported yet "
            "(follow here, or send a one-off `ingest --from-index SRC --queue` to the workers)"
        )
    every = parse_duration("--interval", interval or DEFAULT_INTERVAL)
    if every <= 0:
        raise ConfigError("--interval must be more than 0")
    return FollowOptions(
        interval=every,
        since_field=since_field,
        reconcile_every=parse_duration("--reconcile-every", reconcile_every or DEFAULT_RECONCILE),
        from_start=from_start,
    )


def run_follow(
    target: Index,
    source: str,
    options: IngestOptions,
    follow: FollowOptions,
    *,
    model: str | None,
    device: str,
    dead_letter: Path | None,
    as_json: bool,
    show: bool,
) -> None:
    """Follow under a progress bar until SIGINT or SIGTERM; then the summary and the exit."""
    from xlidx.workflows.ingest import StopRequest

    stop = StopRequest()
    with _progress_bar(show) as bar, _stop_on_signals(stop):
        watch = _Watch(bar, show=show, retry_for=options.retry_for or 0.0)
        polls = _Polls(watch, as_json=as_json, show=show)
        try:
            summary = target.follow(
                source, options, follow, model=model, device=device, dead_letters=dead_letter,
                progress=polls.progress, on_poll=polls.poll, on_wait=watch.on_wait, stop=stop,
            )  # fmt: skip
            interrupted: Interrupted | None = None
        except Interrupted as exc:
            summary, interrupted = exc.summary, exc
    _report(summary, as_json=as_json)
    if interrupted is not None:
        again = shlex.join(["xlidx", *sys.argv[1:]])
        name = signal.Signals(interrupted.signal_number).name
        err.print(f"interrupted by {name}: `{again}` resumes from the checkpoint in the cluster")
        raise typer.Exit(interrupted.exit_code)


class _Polls:
    """Each poll: a JSON line, the bar's lag, or a line for a service's journal."""

    def __init__(self, watch: _Watch, *, as_json: bool, show: bool) -> None:
        self.watch, self.as_json, self.show = watch, as_json, show

    def progress(self, stage: str, n: int) -> None:
        self.watch.progress(stage, n)

    def poll(self, report: PollReport) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        lag = f"lag {format_duration(round(report.lag_seconds, 1))}, {report.waiting} waiting"
        if self.show:
            self.watch.progress(f"following ({lag})", 0)
        elif report.read or report.deleted:
            err.print(
                f"poll {report.poll}: read {report.read}, indexed {report.indexed}, unchanged "
                f"{report.unchanged}, dead-lettered {report.dead_lettered}, deleted "
                f"{report.deleted}; {lag}"
            )


def _report(summary: FollowSummary, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary.to_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        stopped = "interrupted: " if summary.interrupted else ""
        out.print(
            f"{stopped}followed {summary.source} into {summary.index} for "
            f"{format_duration(round(summary.seconds))} ({summary.polls} poll(s)): read "
            f"{summary.read}, indexed {summary.indexed}, unchanged {summary.unchanged}, "
            f"dead-lettered {summary.dead_lettered}, deleted {summary.deleted}; lag "
            f"{format_duration(round(summary.lag_seconds, 1))}, {summary.waiting} waiting"
        )
        if summary.resumed:
            out.print(
                f"resumed from the checkpoint ({summary.read_before:,} document(s) read by "
                "earlier runs)"
            )
        if summary.languages:
            langs = ", ".join(f"{k} {v}" for k, v in summary.languages.most_common())
            out.print(f"languages: {langs}")
    for text in summary.notes:
        err.print(f"note: {text}")
    if summary.calibration_error:
        err.print(
            f"warning: calibration failed ({summary.calibration_error}); the documents are "
            "indexed, `xlidx index calibrate` tries again"
        )
    for pair, n in sorted(summary.untranslated.items()):
        err.print(f"warning: no translation package for {pair}; {n} document(s) indexed without it")
    if summary.dead_lettered:
        err.print(f"{summary.dead_lettered} record(s) dead-lettered to {summary.dead_letter_file}")
