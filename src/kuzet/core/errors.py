"""The one error tree: every error a user can see says what was wrong and what to do."""

from __future__ import annotations


class KuzetError(Exception):
    """Base of every error kuzet raises on purpose.

    Args:
        message: What went wrong, naming the input.
        hint: What the user can do about it.

    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(KuzetError):
    """The configuration file is missing, unreadable or invalid."""


class InputError(KuzetError):
    """A source, image or file given by the user cannot be used."""


class StreamAuthError(InputError):
    """A camera refused the user name or password (HTTP or RTSP 401/403): retrying soon may lock the account."""


class ModelError(KuzetError):
    """A model could not be found or loaded from the installed packages."""


class EnrolmentError(KuzetError):
    """A photo cannot be enrolled (no face, several faces, unreadable)."""


class StoreError(KuzetError):
    """The database or media folder cannot be used."""


class NotFoundError(KuzetError):
    """A requested record does not exist."""


class AuthError(KuzetError):
    """Not signed in, a wrong password, or an expired session."""


class PermissionDenied(KuzetError):
    """The signed-in user's roles do not allow the action."""


class PolicyRefusal(KuzetError):
    """The action breaks the watchlist policy (prohibited category or label, missing legal basis, ...)."""


class BusyError(KuzetError):
    """The work asked for waits behind other work of its kind; try again shortly."""


class TooManyAttempts(AuthError):
    """Sign-in is locked for a while after repeated failures (per account and per client address)."""
