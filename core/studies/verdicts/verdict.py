"""One verdict: the `Verdict` record, its JSON form's fields and their check (`validate`, findings.json's schema)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field

from core.studies.verdicts.claims import CLAIMS, STATISTICS, TESTS, THRESHOLDS, VERDICTS
from core.studies.verdicts.rows import finite, jsonable


@dataclass
class Verdict:
    """One finding's test on one model (and checkpoint): what was claimed, tested, computed and concluded."""

    id: str  # "1" ... "7"
    claim: str  # the paper's claim in plain words
    test: str  # the stated, falsifiable test
    statistic: str  # what `value` is
    value: float | None
    ci: tuple[float, float] | None  # 95% bootstrap CI (over images, inputs or runs)
    threshold: str  # when it holds, when it does not
    verdict: str  # "holds" | "does not hold" | "inconclusive"
    why: str  # one plain sentence
    n: int  # rows used
    left_out: dict = field(default_factory=dict)  # reason -> rows
    model: str | None = None
    checkpoint: str | None = None
    evidence: dict = field(default_factory=dict)  # the numbers behind it, JSON-ready

    def to_dict(self) -> dict:
        """The verdict as a JSON-ready dict with the fields `VERDICT_FIELDS` (NaN -> None, ci -> [lo, hi] or None)."""
        ci = None
        if self.ci is not None and all(finite(c) for c in self.ci):
            ci = [float(self.ci[0]), float(self.ci[1])]
        return {"id": str(self.id), "claim": self.claim, "test": self.test, "statistic": self.statistic,
                "value": float(self.value) if finite(self.value) else None, "ci": ci, "threshold": self.threshold,
                "verdict": self.verdict, "why": self.why, "n": int(self.n),
                "left_out": {str(k): int(v) for k, v in sorted(self.left_out.items())},
                "model": self.model, "checkpoint": self.checkpoint, "evidence": jsonable(self.evidence)}


VERDICT_FIELDS = ("id", "claim", "test", "statistic", "value", "ci", "threshold", "verdict", "why", "n", "left_out",
                  "model", "checkpoint", "evidence")


def validate(d: dict) -> dict:
    """Check that `d` is a verdict as `Verdict.to_dict` writes it (findings.json's entries).

    Args:
        d: the dict.

    Returns:
        `d` unchanged.

    Raises:
        ValueError: naming every missing field, wrong type or bad value (the dict must also be strict JSON).
    """
    if not isinstance(d, dict):
        raise ValueError(f"not a verdict: a dict is needed (got {type(d).__name__})")  # noqa: TRY004 - one error type
    problems = [f"missing field {k!r}" for k in VERDICT_FIELDS if k not in d]
    problems += [f"unknown field {k!r}" for k in d if k not in VERDICT_FIELDS]

    def check(name, ok, want):
        if name in d and not ok(d[name]):
            problems.append(f"{name} must be {want} (got {d[name]!r})")

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for name in ("id", "claim", "test", "statistic", "threshold", "why"):
        check(name, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
    check("value", lambda v: v is None or number(v), "a finite number or null")
    check("ci", lambda v: v is None or (isinstance(v, (list, tuple)) and len(v) == 2 and all(number(c) for c in v)
                                        and v[0] <= v[1]), "null or [low, high] with low <= high")
    check("verdict", lambda v: v in VERDICTS, "one of " + ", ".join(VERDICTS))
    check("n", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0")
    check("left_out", lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(c, int)
                                                            and not isinstance(c, bool) and c >= 0
                                                            for k, c in v.items()), "a dict of reason -> count")
    for name in ("model", "checkpoint"):
        check(name, lambda v: v is None or isinstance(v, str), "a string or null")
    check("evidence", lambda v: isinstance(v, dict), "a dict")
    if not problems:
        try:
            json.dumps(d, allow_nan=False)
        except (TypeError, ValueError) as exc:
            problems.append(f"not strict JSON ({exc})")
    if problems:
        raise ValueError("not a verdict: " + "; ".join(problems))
    return d



def make_verdict(fid: str, value, ci, verdict: str, why: str, n: int, left_out: Counter, model, checkpoint,
             evidence: dict) -> Verdict:
    return Verdict(fid, CLAIMS[fid], TESTS[fid], STATISTICS[fid], value if finite(value) else None, ci,
                   THRESHOLDS[fid], verdict, why, int(n), dict(left_out), model, checkpoint, evidence)
