"""Who the students are: identities of submissions, and the class roster that names them.

A roster is a CSV file the TA exports from the LMS (or writes by hand).  Its header names the columns; these
names are accepted, case-insensitively, with spaces, `-` and `_` alike (`Email Address` = `email_address`):

| column | accepted headers |
| --- | --- |
| student id (`sid`) | `sid`, `student id`, `student number`, `id number`, `idnumber` |
| name | `name`, `full name`, `student`, `student name`; or `first name` and `last name` (`firstname`, `given name`; `lastname`, `surname`, `family name`: Moodle's own grade export, which therefore works as a roster) |
| email | `email`, `email address`, `e-mail` |
| Canvas user id | `canvas_id`, `canvas user id`; `id` too where the header also has `sis user id` or `sis login id` (Canvas's gradebook export, which therefore works as a roster) |
| Moodle participant number | `moodle_id`, `participant`, `participant id` |
| Gradescope submission/user id | `gradescope_id` |
| SIS user id | `sis_user_id` |
| SIS login id | `sis_login_id`, `login`, `username` |
| section | `section` |
| extension | `extension`, `late extension`: more time for this student's late work (`2d`, `36h`; see `grader.sources.late`) |

Other columns are ignored.  A row needs at least one of sid, email, an LMS id or a name; sids, emails and LMS
ids must be unique.  Every error names the file and the row (`roster.csv: row 4: ...`).
"""
from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from grader.errors import GraderError
from grader.spreadsheet import read_csv_text

__all__ = ["LMS_KEYS", "Identity", "Roster", "RosterError", "is_test_student", "name_keys", "plain_text"]

# LMS ids an identity may carry; the roster columns of the same names hold them.
LMS_KEYS = ("canvas_id", "moodle_id", "gradescope_id", "sis_user_id", "sis_login_id")

_HEADERS = {
    "sid": ("sid", "student_id", "student_number", "id_number", "idnumber"),
    "name": ("name", "full_name", "student", "student_name"),
    # Moodle's own grade export ("First name", "Last name", "ID number", "Email address", ...).
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
    "email": ("email", "email_address", "e_mail"),
    "canvas_id": ("canvas_id", "canvas_user_id"),
    "moodle_id": ("moodle_id", "participant", "participant_id"),
    "gradescope_id": ("gradescope_id",),
    "sis_user_id": ("sis_user_id",),
    "sis_login_id": ("sis_login_id", "login", "username"),
    "section": ("section",),
    "extension": ("extension", "late_extension"),  # "2d": more time for this student (grader.sources.late)
}
_ALIASES = {alias: column for column, aliases in _HEADERS.items() for alias in aliases}
MAX_ROSTER_BYTES = 16 * 1024 * 1024  # a class of 100,000 fits many times over; more is not a roster
# C0 and C1 control characters (ESC among them): in a name they could move the cursor, recolour or retitle the
# terminal of the TA it is printed to, and no one's name or id holds one.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def plain_text(text: str) -> str:
    """A name, id or email as the grader keeps it: control characters (terminal escapes) dropped, a tab or line
    break made a space."""
    return _CONTROL.sub(lambda m: " " if m.group() in "\t\n\r" else "", text)


class RosterError(GraderError):
    """The roster file is unusable; the message names the file and the row."""


@dataclass(frozen=True)
class Identity:
    """One student as a submission or the roster knows them.

    `key` is stable and unique within a class: the roster's sid (or the LMS id) when the student is known,
    else what the submission itself says (the LMS id in its name, or the file/folder stem).
    """

    key: str
    name: str = ""
    sid: str = ""
    email: str = ""
    lms_ids: dict[str, str] = field(default_factory=dict)  # {"canvas_id": "1001", "section": "L01", ...}

    @property
    def label(self) -> str:
        """How a TA recognises the student in a message."""
        return f"{self.name} ({self.key})" if self.name and self.name != self.key else self.key

    def serialize(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "sid": self.sid, "email": self.email, "lms_ids": dict(self.lms_ids)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        ids = data.get("lms_ids") or {}
        return cls(
            key=str(data["key"]), name=str(data.get("name", "")), sid=str(data.get("sid", "")),
            email=str(data.get("email", "")), lms_ids={str(k): str(v) for k, v in ids.items()},
        )


def name_keys(name: str) -> set[str]:
    """Spellings of a name that identify it: letters and digits only, casefolded, in both name orders.

    "Alice Smith", "Smith, Alice" and Canvas's file prefix `smithalice` (its sortable name, lowercased word
    characters only) all give `smithalice` among their keys.
    """
    text = unicodedata.normalize("NFKC", name).casefold().strip()
    if not text:
        return set()
    if "," in text:  # "Last, First"
        last, _, first = text.partition(",")
        parts = [first.strip(), last.strip()]
    else:
        words = text.split()
        parts = [" ".join(words[:-1]), words[-1]] if len(words) > 1 else words
    flat = ["".join(c for c in p if c.isalnum()) for p in parts]
    keys = {"".join(flat), "".join(reversed(flat))}
    return {k for k in keys if k}


def is_test_student(name: str) -> bool:
    """Canvas's "Test Student" (Student View's fake student; `studenttest` in a download's file names)."""
    return bool(name_keys(name) & {"teststudent", "studenttest"})


def _norm_header(text: str) -> str:
    text = text.strip().lstrip("\ufeff").casefold()
    return re.sub(r"[\s\-_]+", "_", text).strip("_")


class Roster:
    """The class list, and the matching of submissions to it (by LMS id, sid, email, then name)."""

    def __init__(self, students: Iterable[Identity], source: str = "roster", left_out: Iterable[Identity] = ()) -> None:
        self.students: tuple[Identity, ...] = tuple(students)
        self.source = source
        self.left_out: tuple[Identity, ...] = tuple(left_out)  # Canvas's "Test Student": not graded, not exported
        self._by: dict[str, dict[str, Identity]] = {k: {} for k in (*LMS_KEYS, "sid", "email")}
        names: dict[str, list[Identity]] = {}
        for s in self.students:
            for k, v in s.lms_ids.items():
                if k in self._by and v:
                    self._by[k][v] = s
            if s.sid:
                self._by["sid"][s.sid] = s
            if s.email:
                self._by["email"][s.email.casefold()] = s
            for nk in name_keys(s.name):
                names.setdefault(nk, []).append(s)
        # A name two students share identifies neither of them.
        self._by_name = {k: v[0] for k, v in names.items() if len({id(s) for s in v}) == 1}

    def __len__(self) -> int:
        return len(self.students)

    @classmethod
    def load(cls, path: Path) -> Roster:
        try:
            if path.stat().st_size > MAX_ROSTER_BYTES:
                raise RosterError(f"{path}: larger than {MAX_ROSTER_BYTES // 2**20} MiB; is this the roster?")
            text = read_csv_text(path)  # Excel's "CSV UTF-8" starts with a BOM
        except FileNotFoundError as exc:
            raise RosterError(f"{path}: no such roster file") from exc
        except OSError as exc:
            raise RosterError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise RosterError(f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "roster") -> Roster:
        try:
            rows = list(csv.reader(text.splitlines()))
        except csv.Error as exc:
            raise RosterError(f"{source}: not a readable CSV file ({exc})") from exc
        if not rows:
            raise RosterError(f"{source}: empty; the first row must name the columns (sid, name, email, ...)")
        columns = cls._columns(rows[0], source)
        students: list[Identity] = []
        left_out: list[Identity] = []
        seen: dict[tuple[str, str], int] = {}
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row) or row[0].strip() == "Points Possible":
                continue  # blank lines (a spreadsheet's trailing rows), Canvas's points row: no student
            values = {col: plain_text(row[i]).strip() if i < len(row) else "" for i, col in columns.items()}
            student = cls._student(values, source, number)
            if is_test_student(student.name):
                left_out.append(student)
                continue
            for k in ("sid", "email", *LMS_KEYS):
                v = student.email.casefold() if k == "email" else student.sid if k == "sid" else student.lms_ids.get(k, "")
                if not v:
                    continue
                if (k, v) in seen:
                    raise RosterError(f"{source}: row {number}: {k} {v!r} is already the student of row {seen[(k, v)]}")
                seen[(k, v)] = number
            students.append(student)
        return cls(students, source, left_out)

    @staticmethod
    def _columns(header: list[str], source: str) -> dict[int, str]:
        columns: dict[int, str] = {}
        names = [_norm_header(cell) for cell in header]
        # `ID` alone is ambiguous (many hand-made rosters mean the student id); beside Canvas's SIS columns it is
        # the Canvas user id, as in Canvas's own gradebook export.
        canvas_like = "sis_user_id" in names or "sis_login_id" in names
        for i, cell in enumerate(header):
            column = "canvas_id" if canvas_like and names[i] == "id" else _ALIASES.get(names[i])
            if column is None:
                continue
            if column in columns.values():
                raise RosterError(f"{source}: row 1: two columns mean {column} ({cell!r} is the second)")
            columns[i] = column
        if not set(columns.values()) & {"sid", "email", "name", "first_name", "last_name", *LMS_KEYS}:
            raise RosterError(
                f"{source}: row 1: no known column; the header needs some of sid, name, email, canvas_id, "
                f"moodle_id, sis_user_id, sis_login_id (found {', '.join(header) or 'nothing'})"
            )
        return columns

    @staticmethod
    def _student(values: dict[str, str], source: str, number: int) -> Identity:
        lms = {k: values[k] for k in (*LMS_KEYS, "section", "extension") if values.get(k)}
        # Canvas's gradebook export has no student id column: its SIS User ID is the institution's student id.
        sid = values.get("sid", "") or values.get("sis_user_id", "")
        email = values.get("email", "")
        name = values.get("name", "") or " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
        if email and "@" not in email:
            raise RosterError(f"{source}: row {number}: email {email!r} has no '@'")
        if not (sid or email or name or any(lms.get(k) for k in LMS_KEYS)):
            raise RosterError(f"{source}: row {number}: no sid, email, LMS id or name: nothing identifies the student")
        key = sid or next((lms[k] for k in LMS_KEYS if lms.get(k)), "") or email or name
        return Identity(key=key, name=name, sid=sid, email=email, lms_ids=lms)

    def match(self, probe: Identity) -> Identity | None:
        """The roster's student for what a submission says about itself, or None.

        Order: an LMS id both carry, the sid, the email (case-insensitive), the name (any order, letters and
        digits only; never a name two roster students share).
        """
        for k in LMS_KEYS:
            v = probe.lms_ids.get(k)
            if v and v in self._by[k]:
                return self._by[k][v]
        if probe.sid and probe.sid in self._by["sid"]:
            return self._by["sid"][probe.sid]
        if probe.email and probe.email.casefold() in self._by["email"]:
            return self._by["email"][probe.email.casefold()]
        for nk in sorted(name_keys(probe.name)):
            if nk in self._by_name:
                return self._by_name[nk]
        return None

    def merged(self, probe: Identity) -> Identity | None:
        """`match`, with what the submission adds (an LMS id the roster lacks) kept beside the roster's data."""
        found = self.match(probe)
        if found is None:
            return None
        ids = {**{k: v for k, v in probe.lms_ids.items() if v}, **found.lms_ids}
        return Identity(found.key, found.name or probe.name, found.sid, found.email or probe.email, ids)
