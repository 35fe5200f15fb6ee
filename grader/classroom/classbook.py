"""Reading a finished class folder: its results and who each student is, from OUT/gradebook.sqlite only.

`grader show`, `grader status` and `grader export` read here and never write the results.  Who each student
is (an `Entry` of `grader.sources.discover`: identity, files, group members) lives in an `entries` table of the same
database, written by `Gradebook.record_entries` as the class is graded (grader.classroom.gradebook owns the
schema; this module only reads); a class graded before that table existed is
identified again from each result's original path (`grader.sources.discover.identify`).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from grader.classroom.gradebook import FILENAME, stored_entries, stored_results
from grader.errors import GraderError
from grader.results import SubmissionResult
from grader.sources.discover import Entry, identify
from grader.sources.roster import name_keys

__all__ = [
    "find_result",
    "gradebook_path",
    "label",
    "matching",
    "no_such_student",
    "people",
    "read_entries",
    "read_results",
    "resolve",
]

def gradebook_path(out: Path) -> Path:
    path = out / FILENAME
    if not path.is_file():
        raise GraderError(f"{out} has no {FILENAME}: is it a folder `grader grade --out` wrote?")
    return path


def read_results(out: Path) -> list[SubmissionResult]:
    """Every result of the class, sorted by student folder name."""
    return stored_results(gradebook_path(out))


def read_entries(out: Path) -> dict[str, Entry]:
    """Student folder name -> its entry, where grading recorded them (else empty)."""
    return stored_entries(gradebook_path(out))


def people(out: Path, results: list[SubmissionResult] | None = None) -> dict[str, Entry]:
    """Student folder name -> who it is, for every result of the class (identified from its path where the
    class did not record it)."""
    results = read_results(out) if results is None else results
    entries = read_entries(out)
    return {
        r.student: entries.get(r.student) or Entry(Path(r.path), (Path(r.path),), identify(Path(r.path)))
        for r in results
    }


def _keys(name: str, entry: Entry) -> tuple[set[str], set[str]]:
    """(exact keys, name keys) a TA may name the student of folder `name` by, casefolded."""
    s = entry.student
    exact = {name, entry.main.name, entry.main.stem, s.key, s.sid, s.email, *s.lms_ids.values()}
    exact |= {n for n in entry.names[:1]} | {Path(n).stem for n in entry.names[:1]}
    return {k.casefold() for k in exact if k}, name_keys(s.name)


def matching(query: str, people: dict[str, Entry]) -> list[str]:
    """The folder names `query` names: a folder name, a file name or stem, the student's key, sid, email, an LMS
    id (any case), or their name in either order ("Jones, Bob", "Bob Jones", Canvas's `jonesbob`)."""
    want, names = query.strip().casefold(), name_keys(query)
    found = []
    for name, entry in people.items():
        exact, by_name = _keys(name, entry)
        if want in exact or names & by_name:
            found.append(name)
    return found


def label(name: str, entry: Entry) -> str:
    """How a student is shown to a TA: name, sid and folder (`Carol Lee (s003)`, `Carol Lee (s003, folder 1003)`)."""
    s = entry.student
    ids = [x for x in (s.sid or s.key,) if x]
    if name not in ids:
        ids.append(f"folder {name}")
    return f"{s.name} ({', '.join(ids)})" if s.name and s.name not in ids else ", ".join(ids)


def no_such_student(query: str, people: dict[str, Entry], where: str) -> GraderError:
    """The error for a name that matches nobody, with the near candidates."""
    spelled: dict[str, str] = {}
    for name, entry in people.items():
        exact, _ = _keys(name, entry)
        for k in (*exact, entry.student.name.casefold()):
            if k:
                spelled.setdefault(k, name)
    near = difflib.get_close_matches(query.strip().casefold(), list(spelled), n=10, cutoff=0.6)
    near += [k for k in spelled if query.strip().casefold() in k and k not in near]
    folders = list(dict.fromkeys(spelled[k] for k in near))[:5]
    if folders:
        hint = "; did you mean " + ", ".join(label(f, people[f]) for f in folders) + "?"
    else:
        hint = f" (`grader status {where}` lists them)" if where else ""
    return GraderError(f"no student {query!r} in {where or 'these submissions'}{hint}")


def resolve(query: str, people: dict[str, Entry], where: str = "") -> str:
    """The one folder name `query` names (see `matching`); an unknown or ambiguous name is an error listing the
    candidates."""
    if query in people:
        return query
    hits = matching(query, people)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise GraderError(f"{query!r} names {len(hits)} students: "
                          f"{', '.join(label(h, people[h]) for h in hits)}; use a folder name or sid")
    raise no_such_student(query, people, where)


def find_result(out: Path, student: str) -> SubmissionResult:
    """One student's result, named by any key `matching` accepts."""
    results = read_results(out)
    name = resolve(student, people(out, results), str(out))
    return next(r for r in results if r.student == name)
