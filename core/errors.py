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


class SweepStopped(UserError):
    """A sweep lost what ran it (a Ray node, the local raylet, the connection to the cluster, a task out of
    retries). Its finished runs are stored, so running the same sweep again resumes: only the missing runs run.

    `cause` says what happened in words; `stored` and `total` count the sweep's runs (set once the driver has
    collected what is stored); `outcome` is the sweep's `Outcome` with the rows it has, for writing them."""

    def __init__(self, cause: str, stored: int | None = None, total: int | None = None, outcome=None,
                 retried: int = 0):
        self.cause, self.stored, self.total, self.outcome, self.retried = cause, stored, total, outcome, retried
        self.report = None  # a findings run sets it to what it judged before the stop
        super().__init__(self.say("rerun the same command to resume"))

    def say(self, resume: str) -> str:
        """The one-line message, ending with how to resume (`resume`: the CLI's or the page's words)."""
        counts = f"; {self.stored} of {self.total} runs are stored" if self.total is not None else ""
        missing = f" (it runs only the {self.total - self.stored} missing)" if self.total is not None else ""
        return f"the sweep stopped: {self.cause}{counts}; {resume}{missing}"
