"""Domain exceptions. Each one is a ``ValueError`` whose message is one clear line for the user."""

from __future__ import annotations


class OgadError(ValueError):
    """Bad input or a state the user can fix; the CLI prints ``str(err)`` and exits 2.

    ``param`` names the parameter at fault (``proj_dim``) when there is one: the message starts
    with it, and the CLI shows the matching flag (``--proj-dim``) instead.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class DataError(OgadError):
    """The data spec, files, labels or values are unusable."""


class ModelError(OgadError):
    """A user model factory or checkpoint cannot be loaded or does not fit the data."""


class ConfigError(OgadError):
    """An option value is out of range or options contradict each other."""


class RunDirError(OgadError):
    """A run directory is missing, incomplete, unwritable or holds a different run."""


class ReviewError(OgadError):
    """A review decision is invalid (unknown sample id, unknown label, bad decision)."""
