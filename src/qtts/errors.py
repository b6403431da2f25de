"""The one error taxonomy of qtts.

Every failure a user can act on is a ``QttsError`` with a one-line ``message`` and a
``hint`` (the next thing to do).  The CLI prints both without a traceback; the HTTP app maps
``category`` to a status code in one exception handler.
"""

from __future__ import annotations


class QttsError(Exception):
    """Base class: a message, a hint, and a category the adapters map to exit/status codes."""

    category = "error"
    http_status = 500

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str]:
        return {"category": self.category, "message": self.message, "hint": self.hint}


class BadInput(QttsError):
    """The request itself is wrong (empty text, unknown language, bad voice id, bad file)."""

    category = "input"
    http_status = 400


class NotFound(BadInput):
    """A named thing (voice, job, file) does not exist."""

    category = "not_found"
    http_status = 404


class TooLarge(BadInput):
    """Input over a configured limit (text length, upload size, reference duration)."""

    category = "too_large"
    http_status = 413


class AuthError(QttsError):
    """The HTTP request lacks the server's API key."""

    category = "auth"
    http_status = 401


class MemoryShortage(QttsError):
    """Not enough RAM to load or run the model."""

    category = "memory"
    http_status = 507


class DependencyProblem(QttsError):
    """A library is missing or at a version that does not work."""

    category = "dependency"
    http_status = 500


class ModelUnavailable(QttsError):
    """The model id is unknown, not downloaded while offline, or of the wrong type."""

    category = "model"
    http_status = 503


class SynthesisTimeout(QttsError):
    """Generation ran past ``--timeout``."""

    category = "timeout"
    http_status = 504


class Cancelled(QttsError):
    """The caller cancelled the work."""

    category = "cancelled"
    http_status = 499
