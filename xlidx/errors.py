"""Every error xlidx raises on purpose derives from :class:`XlidxError`.

The tree (classes defined elsewhere name their module)::

    XlidxError                     exit code 1 unless a subclass says otherwise
    ├── ConfigError                bad settings: a malformed config file, a bad flag value
    ├── DevNodeError               the local dev node (or its Redis) could not be set up or started
    │   └── ArtifactError          a download failed or its checksum did not match
    ├── ModelError                 an embedding model or translation package cannot be loaded
    │                              (missing path, hub unreachable offline, unsupported pair)
    ├── MappingError               an index's mapping or _meta does not fit the request
    │   ├── IndexNotFound          no xlidx index (alias) by that name
    │   └── ModelMismatch          writing/querying with another model than the index records
    ├── BackendError               the cluster answered with an error, or could not be reached
    │   ├── ConnectionFailed       nothing answered at the URL (refused, DNS, timeout)
    │   ├── TLSFailed              the TLS handshake failed (unknown CA, bad certificate)
    │   ├── AuthenticationFailed   the cluster refused the credentials (HTTP 401/403)
    │   ├── QueryUnavailable       (xlidx.search.retry) a query still failed transiently when
    │                              its retry budget (``--retry-for``) ran out
    │   └── ServiceError           a running ``xlidx serve`` could not be reached, or answered
    │                              with an error (``xlidx query --serve``)
    ├── Unsupported                the cluster cannot do what was asked (no ml-commons plugin,
    │                              no inference API, the wrong engine for the command)
    ├── QueueError                 the broker or the job store (Redis) could not be reached,
    │                              or a queued job cannot be followed
    ├── GateRefused                (xlidx.workflows.migrate) a migration gate measured a regression
    │                              beyond ``--max-drop``: the alias stays; exit code 3
    └── Interrupted                a signal (SIGINT, SIGTERM) stopped a run; carries what was
                                   done (``summary``); exit code 128 + the signal's number

Two exceptions stay inside the library and are not errors: ``StopWaiting``
(:mod:`xlidx.pipeline.patience`: a stopping run leaves a wait; the ingest turns it into
``Interrupted``) and the bulk writer's private ``_TurnedAway`` (documents refused for now).

Which failures are worth another try is decided once, here: :attr:`BackendError.transient`
(:func:`is_transient`), used by the batch jobs' patience, the bulk writer, the queue workers
and the query retries alike.

Messages are one line, meant for a person, and never contain credentials. The CLI prints
``error: <message>`` and exits with :attr:`XlidxError.exit_code`.
"""

from __future__ import annotations

from typing import Any


class XlidxError(Exception):
    """Root of every error xlidx raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(XlidxError):
    """Settings could not be read or do not make sense."""


class DevNodeError(XlidxError):
    """The local development node could not be installed, started or stopped."""


class ArtifactError(DevNodeError):
    """A distribution or plugin could not be downloaded or failed its checksum."""


class ModelError(XlidxError):
    """An embedding model or translation package cannot be found, loaded or used."""


class MappingError(XlidxError):
    """An index does not exist, is not managed by xlidx, or its mapping does not fit."""


class IndexNotFound(MappingError):
    """There is no xlidx index (alias) by that name."""


class ModelMismatch(MappingError):
    """The model in use differs from the one recorded in the index's ``_meta``."""


class BackendError(XlidxError):
    """The search cluster returned an error or could not be reached.

    ``status`` is the HTTP status when there was one; ``details`` holds whatever the
    cluster said (already stripped of credentials).
    """

    def __init__(self, message: str, *, status: int | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details

    @property
    def transient(self) -> bool:
        """Worth trying again later: the cluster was busy or in between (a
        :data:`TRANSIENT_STATUSES` answer), a node or shard went away under the request
        (:data:`NODE_GONE_MARKERS`), or a block that lifts by itself (the disk flood stage's
        read-only-allow-delete, which OpenSearch answers with 403). :class:`ConnectionFailed`
        (nothing answered) always is."""
        if transient_status(self.status):
            return True
        said = f"{self.message} {self.details!r}"
        if any(marker in said for marker in NODE_GONE_MARKERS):
            return True
        return self.status == 403 and "allow delete" in str(self.details or self.message)


# The statuses worth trying again, for queries and writes alike (a document refused in a
# bulk response included). 500 is not one of them: OpenSearch and Elasticsearch answer 500
# for an exception nothing handled on a node (a bug, a request that trips one, a failing
# script), which the same request trips again, so retrying only delays the error (by up to
# --retry-for, or a queue worker's every retry). What waiting does cure has a status of its
# own: 429 (queues full, a circuit breaker), 503 (no master, shards not yet assigned, a
# retryable cluster block), 502 and 504 (a proxy in front of a node that is gone or slow).
# A node that leaves in the middle of a request can surface with another status (even 400
# or 500): those are told by what they name (NODE_GONE_MARKERS), not by their status.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})

# failures that name a node or a shard copy that is gone right now (a node just left)
NODE_GONE_MARKERS = (
    "no_shard_available_action_exception",
    "NoShardAvailableActionException",
    "node_not_connected_exception",
    "node_disconnected_exception",
    "NodeNotConnectedException",
    "NodeDisconnectedException",
    "shard_not_found_exception",
    "primary shard is not active",
)


def transient_status(status: object) -> bool:
    """An HTTP status worth trying again later (:data:`TRANSIENT_STATUSES`)."""
    return isinstance(status, int) and status in TRANSIENT_STATUSES


def is_transient(exc: BaseException) -> bool:
    """A cluster failure that waiting can cure (:attr:`BackendError.transient`)."""
    return isinstance(exc, BackendError) and exc.transient


class ConnectionFailed(BackendError):
    """No cluster answered at the configured URL."""

    @property
    def transient(self) -> bool:
        return True


class TLSFailed(BackendError):
    """The TLS handshake with the cluster failed."""


class AuthenticationFailed(BackendError):
    """The cluster rejected the credentials (401) or their permissions (403)."""


class ServiceError(BackendError):
    """A running ``xlidx serve`` could not be reached (``status`` None: worth another try),
    or answered with an error (transient by its status, as the cluster's are)."""

    @property
    def transient(self) -> bool:
        return self.status is None or transient_status(self.status)


class Unsupported(XlidxError):
    """The cluster lacks what the request needs: a plugin, an API, or a licence."""


class QueueError(XlidxError):
    """The broker or the job store could not be reached, or a job cannot be followed."""


class Interrupted(XlidxError):
    """A run stopped on a signal after finishing (or abandoning) the work in flight.

    ``summary`` is what the run did until then (for ``xlidx.workflows.ingest.ingest``, its
    ``IngestSummary`` with ``interrupted`` set); ``signal_number`` is the signal that stopped
    it (``signal.SIGINT`` for Ctrl-C or a ``KeyboardInterrupt``). The exit code follows the
    shell's convention: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, message: str, *, signal_number: int, summary: Any = None) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        self.summary = summary
        self.exit_code = 128 + signal_number
