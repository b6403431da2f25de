"""The one error taxonomy of qtts, and its one table of exit codes and HTTP statuses.

Every failure a user can act on is a ``QttsError`` with a one-line ``message`` and a
``hint`` (the next thing to do).  Each class has a ``category`` (the JSON ``code`` of HTTP
errors and the ``category`` of failed jobs), an ``exit_code`` for the CLI and an
``http_status`` for the HTTP app; the adapters read them from here and nowhere else, and
the HTTP client rebuilds the class from the ``code`` it gets back (``from_category``).
"""

from __future__ import annotations


class QttsError(Exception):
    """Base class: a message, a hint, and a category the adapters map to exit/status codes."""

    category = "error"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str]:
        return {"category": self.category, "message": self.message, "hint": self.hint}


class BadInput(QttsError):
    """The request itself is wrong (empty text, unknown language, bad voice id, bad file)."""

    category, exit_code, http_status = "input", 2, 400


class NotFound(BadInput):
    """A named thing (voice, job, file) does not exist."""

    category, exit_code, http_status = "not_found", 2, 404


class TooLarge(BadInput):
    """Input over a configured limit (text length, upload size, reference duration)."""

    category, exit_code, http_status = "too_large", 2, 413


class WrongModelKind(BadInput):
    """The request needs another kind of model (cloning on CustomVoice, a speaker on Base, …)."""

    category, exit_code, http_status = "model_kind", 2, 400


class JobNotDone(BadInput):
    """The audio of a job that has not succeeded (yet) was asked for."""

    category, exit_code, http_status = "job_not_done", 2, 409


class AuthError(QttsError):
    """The HTTP request lacks the server's API key."""

    category, exit_code, http_status = "auth", 2, 401


class ModelUnavailable(QttsError):
    """The model id is unknown, not downloaded while offline, or of the wrong type."""

    category, exit_code, http_status = "model", 3, 503


class NotReady(ModelUnavailable):
    """The server's model is still loading."""

    category, exit_code, http_status = "not_ready", 3, 503


class MemoryShortage(QttsError):
    """Not enough RAM to load or run the model."""

    category, exit_code, http_status = "memory", 4, 507


class NoRoomForModel(MemoryShortage):
    """A server asked for one more model than its memory holds (the others stay loaded)."""

    category, exit_code, http_status = "model_memory", 4, 503


class DependencyProblem(QttsError):
    """A library is missing or at a version that does not work."""

    category, exit_code, http_status = "dependency", 5, 500


class SynthesisTimeout(QttsError):
    """Generation ran past ``--timeout``."""

    category, exit_code, http_status = "timeout", 6, 504


class Cancelled(QttsError):
    """The caller cancelled the work."""

    category, exit_code, http_status = "cancelled", 7, 499


class ServerUnavailable(QttsError):
    """No qtts server answers at the configured URL."""

    category, exit_code, http_status = "server", 8, 502


class DiskFull(QttsError):
    """No space left (or a quota reached) where qtts writes audio, voices or jobs."""

    category, exit_code, http_status = "disk_full", 9, 507


class OutputFailed(QttsError):
    """The output could not be written: stdout's reader went away, or the device failed."""

    category, exit_code, http_status = "output", 11, 500


class WorkerDied(QttsError):
    """A job's worker died on every attempt (the job is not tried again)."""

    category, exit_code, http_status = "worker_died", 10, 500


def _all_classes() -> list[type[QttsError]]:
    found, pending = [QttsError], [QttsError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def exit_code_for(category: str) -> int:
    """The CLI exit code of an error category (1 for anything unknown: a bug)."""
    return next((cls.exit_code for cls in _all_classes() if cls.category == category), 1)


def from_category(category: str, message: str, hint: str = "", http_status: int = 500) -> QttsError:
    """Rebuild the typed error from its ``category`` (the HTTP client's side of the table);
    an unknown category falls back on the HTTP status."""
    for cls in _all_classes():
        if cls.category == category:
            return cls(message, hint)
    fallback = BadInput if 400 <= http_status < 500 else QttsError
    return fallback(message, hint)


def os_error(exc: OSError, what: str) -> QttsError:
    """A filesystem failure as the error a user can act on: a full disk or quota is
    ``DiskFull``; anything else (permissions, a missing directory) is bad input about the
    path."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DiskFull(f"no space left to write {what} ({exc.strerror or exc})",
                        hint="free some disk space (or raise the quota), then try again")
    if exc.errno in (errno.EPIPE, errno.EIO, errno.ECONNRESET):
        return OutputFailed(f"could not write {what}: {exc.strerror or exc}",
                            hint="the program reading the output stopped early; write to a file with --out FILE")
    return BadInput(f"cannot write {what}: {exc.strerror or exc}", hint="choose a writable location")
