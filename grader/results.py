"""Records that cross boundaries: one check's outcome, one question's result, one submission's result.

They are frozen and serialise to plain JSON, so per-submission work can travel between processes and machines.
"""
from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


class Status(str, enum.Enum):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"  # the student's code raised, timed out or is missing
    PENDING = "pending"  # waits for a TA (manual questions)
    GRADER_ERROR = "grader_error"  # the grader's own code failed on this submission: needs a TA, 0 points


@dataclass(frozen=True)
class Outcome:
    """What a check concludes: the fraction of the question's points and why.

    `message` is plain text a TA would write; `details` is structured data for the report (a counterexample,
    the worst element, a loss curve); both must stay meaningful without the other.
    """

    fraction: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    status: Status | None = None

    @property
    def resolved_status(self) -> Status:
        if self.status is not None:
            return self.status
        if self.fraction >= 1.0:
            return Status.PASSED
        return Status.PARTIAL if self.fraction > 0 else Status.FAILED

    @classmethod
    def passed(cls, message: str, **details: Any) -> Outcome:
        return cls(1.0, message, details)

    @classmethod
    def failed(cls, message: str, **details: Any) -> Outcome:
        return cls(0.0, message, details)

    @classmethod
    def error(cls, message: str, **details: Any) -> Outcome:
        return cls(0.0, message, details, Status.ERROR)


@dataclass(frozen=True)
class QuestionResult:
    qid: str
    title: str
    kind: str
    score: float
    max_score: float
    status: Status
    message: str
    visibility: str  # "public" or "hidden"
    details: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.qid} {self.title}"

    def serialize(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionResult:
        return cls(**{**data, "status": Status(data["status"])})


@dataclass(frozen=True)
class CellFailure:
    """A code cell of the submission that raised, timed out or killed its worker."""

    index: int
    reason: str  # "error", "timeout", "died", "syntax"
    message: str
    traceback: list[str] = field(default_factory=list)
    label: str = ""  # as the student sees the cell: `cell In [8]`, `cell 3`, `line 12` (grader.sources.cells)
    first_line: str = ""  # the first line of the cell's code

    @property
    def name(self) -> str:
        """The cell's name in every view; results stored before labels existed fall back to the position."""
        return self.label or f"cell {self.index + 1}"

    def serialize(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LateWork:
    """A submission the LMS (or `--due`) says came late, and what the late policy made of it (`grader.sources.late`).

    `fraction` of the earned points is taken off; the raw score, the penalty and the final score all stay visible.
    """

    source: str  # where lateness comes from: "Canvas's LATE flag", "submitted ... against --due ..."
    late_by_s: float | None = None  # seconds after the due time (extension included); None: unknown
    days: int = 0  # days charged
    fraction: float = 0.0  # of the earned points, taken off
    extension: str = ""  # the student's extension, as given ("2d")
    why: str = ""  # the policy's reasoning in one line, for every view

    @property
    def label(self) -> str:
        return f"late: {self.why}" if self.why else "late"

    def serialize(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LateWork:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class SubmissionResult:
    student: str
    path: str
    assignment: str
    questions: tuple[QuestionResult, ...]
    cell_failures: tuple[CellFailure, ...] = ()
    load_error: str | None = None
    execution_time: float = 0.0
    submission_sha256: str = ""
    rubric_sha256: str = ""
    device: str = "cpu"
    sandbox: str = "none"
    grader_version: str = ""
    # The grader's own failure on this submission (a check, the codec, a report crashed): the traceback, for
    # the TA's eyes and the log only.  The student reads "grader error, needs a TA".
    grader_error: str | None = None
    notes: tuple[str, ...] = ()  # what the loader changed in the student's text (cut, replaced), for the report
    flags: tuple[str, ...] = ()  # signs of tampering, for a TA's eyes; they never change a score
    name: str = ""  # who the student is, from the roster or the LMS's file name (`grader.sources.discover.Entry.student`)
    sid: str = ""  # their student id (or the LMS's id where no roster names them)
    late: LateWork | None = None  # came late (the penalty, if any, is in `score`; `raw_score` is before it)

    @property
    def who(self) -> str:
        """How every view names the student: `Carol Diaz (s003)`, else the folder name."""
        ids = self.sid or self.student
        return f"{self.name} ({ids})" if self.name and self.name != ids else ids

    @property
    def raw_score(self) -> float:
        """The questions' points, before a late penalty."""
        return round(sum(q.score for q in self.questions), 6)

    @property
    def penalty(self) -> float:
        """Points a late policy took off."""
        return round(self.raw_score * self.late.fraction, 6) if self.late else 0.0

    @property
    def score(self) -> float:
        return round(self.raw_score - self.penalty, 6)

    @property
    def late_note(self) -> str:
        """Why the result is late and, where a penalty was taken, raw - penalty = final; "" when on time."""
        if self.late is None:
            return ""
        sums = f" (score {self.raw_score:g} - {self.penalty:g} = {self.score:g})" if self.penalty else ""
        return f"{self.late.label}{sums}"

    @property
    def max_score(self) -> float:
        return round(sum(q.max_score for q in self.questions), 6)

    @property
    def pending_points(self) -> float:
        """Points of questions still waiting for a TA: not in `score` yet, and not lost either."""
        return round(sum(q.max_score for q in self.questions if q.status is Status.PENDING), 6)

    @property
    def needs_ta(self) -> bool:
        """The grader failed on some part of this submission; a person must look before the score stands."""
        return self.grader_error is not None or any(q.status is Status.GRADER_ERROR for q in self.questions)

    def serialize(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "path": self.path,
            "assignment": self.assignment,
            "questions": [q.serialize() for q in self.questions],
            "cell_failures": [c.serialize() for c in self.cell_failures],
            "load_error": self.load_error,
            "execution_time": self.execution_time,
            "submission_sha256": self.submission_sha256,
            "rubric_sha256": self.rubric_sha256,
            "device": self.device,
            "sandbox": self.sandbox,
            "grader_version": self.grader_version,
            "grader_error": self.grader_error,
            "notes": list(self.notes),
            "flags": list(self.flags),
            "name": self.name,
            "sid": self.sid,
            "late": self.late.serialize() if self.late else None,
            "raw_score": self.raw_score,
            "penalty": self.penalty,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        data = {k: v for k, v in data.items() if k in _SUBMISSION_FIELDS}
        return cls(
            **{
                **data,
                "questions": tuple(QuestionResult.from_dict(q) for q in data["questions"]),
                "cell_failures": tuple(CellFailure(**c) for c in data["cell_failures"]),
                "notes": tuple(str(n) for n in data.get("notes", ())),
                "flags": tuple(str(n) for n in data.get("flags", ())),
                "late": LateWork.from_dict(data["late"]) if isinstance(data.get("late"), dict) else None,
            }
        )

    def with_questions(self, questions: tuple[QuestionResult, ...]) -> SubmissionResult:
        from dataclasses import replace

        return replace(self, questions=questions)


_SUBMISSION_FIELDS = frozenset(f.name for f in fields(SubmissionResult))

GRADER_ERROR_MESSAGE = "grader error: this question could not be checked; a TA will look at it"


def scrub_text(text: str) -> str:
    """`text` with lone surrogates (from a student's odd bytes) replaced, so it can always be written as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def scrub(value: Any) -> Any:
    """A plain-data value with every string scrubbed; anything that is not plain data becomes its text."""
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {scrub_text(str(k)): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return scrub_text(str(value))
