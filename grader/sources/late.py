"""Late work: whether a submission came late, and what the late policy takes off.

Where lateness comes from, per submission (`grader.sources.discover.Entry`):

- Canvas's download marks a late file `LATE` in its name; it says nothing of how late.
- Gradescope's `submission_metadata.yml` gives each submission's `:created_at:`; Moodle's zip keeps each file's
  upload time as its modification time.  With `--due`, such a submission after the due time (plus the
  student's extension) is late by that much.

The policy (`--late-policy "grace=15min,per_day=10%,max_days=3"`): within `grace` after the due time nothing is
taken; then `per_day` of the earned points for each day begun; after `max_days` days, everything.  A late
flag without a time (Canvas) is charged one day, unless the student has an extension.  Without a policy,
late work is shown everywhere and nothing is taken.  Extensions: `--extension STUDENT=2d` (any key
`grader.classroom.classbook.matching` accepts), or the roster's `extension` column.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from grader.errors import GraderError
from grader.results import LateWork

__all__ = ["LatePolicy", "assess", "describe", "parse_duration", "parse_policy", "parse_time"]

DAY = 86400.0
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": DAY, "day": DAY, "days": DAY, "w": 7 * DAY}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


@dataclass(frozen=True)
class LatePolicy:
    grace_s: float = 0.0
    per_day: float = 0.0  # fraction of the earned points per day begun
    max_days: int | None = None  # after this many days, no credit

    def describe(self) -> str:
        most = f", no credit after {self.max_days} days" if self.max_days is not None else ""
        return f"{self.per_day:.0%} per day late after {describe(self.grace_s)} of grace{most}"


def parse_duration(text: str, where: str = "duration") -> float:
    """"15min", "2h", "1d12h", "90s", "2" (days) -> seconds."""
    raw = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw) * DAY
    parts = _DURATION.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw.replace(" ", "") or any(u not in _UNITS for _, u in parts):
        raise GraderError(f"{where}: {text!r} is not a duration (e.g. 15min, 2h, 3d, 1d12h)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def describe(seconds: float) -> str:
    if seconds >= DAY:
        days, rest = divmod(seconds, DAY)
        return f"{int(days)}d{f' {round(rest / 3600)}h' if rest >= 3600 else ''}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h".replace(".0h", "h")
    return f"{round(seconds / 60)}min"


def parse_policy(text: str) -> LatePolicy:
    """"grace=15min,per_day=10%,max_days=3" (any order, each optional)."""
    values: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in ("grace", "per_day", "max_days"):
            raise GraderError(f"--late-policy: {item!r}: expected grace=DURATION, per_day=PERCENT or max_days=N")
        values[key] = value.strip()
    per_day = values.get("per_day", "0").rstrip("%")
    try:
        fraction = float(per_day) / 100
        max_days = int(values["max_days"]) if "max_days" in values else None
    except ValueError:
        raise GraderError(f"--late-policy: {text!r}: per_day is a percentage (10%), max_days a whole number") from None
    if not 0 <= fraction <= 1 or (max_days is not None and max_days < 0):
        raise GraderError(f"--late-policy: {text!r}: per_day lies in 0..100%, max_days is at least 0")
    return LatePolicy(parse_duration(values.get("grace", "0s"), "--late-policy grace"), fraction, max_days)


_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d)?)(?:\.\d+)?\s*(Z|UTC|[+-]\d\d:?\d\d)?$")


def parse_time(text: str, where: str = "time") -> float:
    """An ISO-like time ("2026-12-01 23:59", "2026-12-01T23:59:00-07:00", Gradescope's
    "2018-08-20 18:04:20.123456000 -0700") -> seconds since the epoch; without an offset, this machine's zone."""
    m = _TIME.match(text.strip())
    if m is None:
        raise GraderError(f"{where}: {text!r} is not a date and time (e.g. 2026-12-01T23:59 or 2026-12-01 23:59-05:00)")
    day, clock, zone = m.groups()
    if len(clock) == 5:
        clock += ":00"
    if zone in ("Z", "UTC"):
        zone = "+00:00"
    elif zone and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    stamp = datetime.fromisoformat(f"{day}T{clock}{zone or ''}")
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # the machine's local zone
    return stamp.timestamp()


def assess(
    *, flagged: bool, submitted_at: float | None, due: float | None, extension_s: float, extension: str,
    policy: LatePolicy | None, flag_source: str = "the LMS marked it late",
) -> LateWork | None:
    """The lateness of one submission, or None when it is on time (or nothing says otherwise)."""
    if submitted_at is not None and due is not None:
        late_by = submitted_at - (due + extension_s)
        if late_by <= 0:
            return None
        source = f"submitted {describe(late_by)} after the due time{' and the extension' if extension_s else ''}"
        if policy is None:
            return LateWork(source, late_by, 0, 0.0, extension, f"{source}; no late policy, nothing taken")
        if late_by <= policy.grace_s:
            return LateWork(source, late_by, 0, 0.0, extension, f"{source}, within the {describe(policy.grace_s)} grace")
        days = math.ceil((late_by - policy.grace_s) / DAY)
        return _charged(source, late_by, days, extension, policy)
    if not flagged:
        return None
    if extension_s > 0:
        return LateWork(flag_source, None, 0, 0.0, extension,
                        f"{flag_source}; covered by the extension ({extension}): nothing taken")
    if policy is None:
        return LateWork(flag_source, None, 0, 0.0, extension, f"{flag_source}; no late policy, nothing taken")
    return _charged(f"{flag_source} (how late is not known: one day charged)", None, 1, extension, policy)


def _charged(source: str, late_by: float | None, days: int, extension: str, policy: LatePolicy) -> LateWork:
    if policy.max_days is not None and days > policy.max_days:
        return LateWork(source, late_by, days, 1.0, extension, f"{source}; more than {policy.max_days} days: no credit")
    fraction = min(1.0, policy.per_day * days)
    return LateWork(source, late_by, days, fraction, extension,
                    f"{source}; {days} day{'s' if days != 1 else ''} at {policy.per_day:.0%}: {fraction:.0%} taken off")
