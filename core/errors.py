"""Errors a user can act on.

Everything the app or the command line should show as a one-line message derives from
`UserError`; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class WeightsNotCached(UserError):
    """Trained weights are not on disk and were not asked to be downloaded."""

    def __init__(self, arch: str, path: str, url: str, size_mb: float | None):
        self.arch, self.path, self.url, self.size_mb = arch, path, url, size_mb
        size = f" ({size_mb:.0f} MB)" if size_mb else ""
        super().__init__(
            f"trained weights for {arch} are not on disk{size}: download them with "
            f"`python -m core download {arch}` (needs a network), or place {url} at {path}"
        )


class DivergenceError(UserError):
    """The optimisation produced NaN or inf; carries the last finite snapshot."""

    def __init__(self, message: str, last_snapshot=None):
        super().__init__(message)
        self.last_snapshot = last_snapshot
