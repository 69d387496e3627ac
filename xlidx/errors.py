"""Every error xlidx raises on purpose derives from :class:`XlidxError`.

The tree::

    XlidxError                     exit code 1 unless a subclass says otherwise
    ├── ConfigError                bad settings: a malformed config file, a bad flag value
    ├── DevNodeError               the local dev node (or its Redis) could not be set up or started
    │   └── ArtifactError          a download failed or its checksum did not match
    ├── ModelError                 an embedding model or translation package cannot be loaded
    │                              (missing path, hub unreachable offline, unsupported pair)
    ├── MappingError               an index's mapping or _meta does not fit the request
    │   └── ModelMismatch          writing/querying with another model than the index records
    ├── BackendError               the cluster answered with an error, or could not be reached
    │   ├── ConnectionFailed       nothing answered at the URL (refused, DNS, timeout)
    │   ├── TLSFailed              the TLS handshake failed (unknown CA, bad certificate)
    │   └── AuthenticationFailed   the cluster refused the credentials (HTTP 401/403)
    ├── QueueError                 the broker or the job store (Redis) could not be reached,
    │                              or a queued job cannot be followed
    └── Interrupted                a signal (SIGINT, SIGTERM) stopped a run; carries what was
                                   done (``summary``); exit code 128 + the signal's number

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
        """Worth retrying later: nothing answered, the cluster was busy or failing (429, 5xx),
        or a block that lifts by itself (the disk flood stage's read-only-allow-delete, which
        OpenSearch answers with 403)."""
        if transient_status(self.status):
            return True
        return self.status == 403 and "allow delete" in str(self.details or self.message)


def transient_status(status: object) -> bool:
    """An HTTP status worth retrying later: 429 (busy) or 5xx (failing)."""
    return isinstance(status, int) and (status == 429 or 500 <= status <= 599)


class ConnectionFailed(BackendError):
    """No cluster answered at the configured URL."""

    @property
    def transient(self) -> bool:
        return True


class TLSFailed(BackendError):
    """The TLS handshake with the cluster failed."""


class AuthenticationFailed(BackendError):
    """The cluster rejected the credentials (401) or their permissions (403)."""


class QueueError(XlidxError):
    """The broker or the job store could not be reached, or a job cannot be followed."""


class Interrupted(XlidxError):
    """A run stopped on a signal after finishing (or abandoning) the work in flight.

    ``summary`` is what the run did until then (for ``xlidx.ingest.ingest``, its
    ``IngestSummary`` with ``interrupted`` set); ``signal_number`` is the signal that stopped
    it (``signal.SIGINT`` for Ctrl-C or a ``KeyboardInterrupt``). The exit code follows the
    shell's convention: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, message: str, *, signal_number: int, summary: Any = None) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        self.summary = summary
        self.exit_code = 128 + signal_number
