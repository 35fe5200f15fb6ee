"""Where submissions come from: a folder of files, a folder per student, or an LMS's download.

`discover(targets, layout, roster)` turns what the TA points at into one `Entry` per student submission: the
main file to grade, the helper files graded with it, and who the student is.  Nothing here reads a
submission's contents; an unreadable file is still an entry (grading gives it a clear 0).

Layouts (`auto` picks one per folder, in this order of evidence):

- `gradescope`: Gradescope's "Download submissions" export: `submission_<id>/` folders beside a
  `submission_metadata.yml` whose entries, keyed by folder name, list the `:submitters:` with `:name:`, `:sid:`
  and `:email:` (Ruby-symbol keys; seen in parsers of real exports, e.g. `Gradescope_Answer_Extractor`-style
  tools and the "provenance" ingesters that read `metadata[folder][':submitters'][0][':name']`).
- `moodle`: Moodle's "Download all submissions".  mod/assign/locallib.php `download_submissions` names each
  student `clean_filename(str_replace('_', ' ', fullname) . '_' . uniqueid)` (underscores in the name become
  spaces, so the participant number is the last `_` field), then `{prefix}_assignsubmission_file_/` as a folder
  (Moodle >= 3.1, the default) or `{prefix}_assignsubmission_file_{filename}` flat (the older form).  Blind
  marking writes `Participant_{id}`; team submissions `{group}-{name}_{id}`.
- `canvas`: Canvas's "Download submissions" zip.  lib/content_zipper.rb names each file
  `[sortable_name, ("LATE" if late), user_id].join("_")` with non-word characters removed and lowercased,
  then `_{attachment_id}_{display_name}`: `smithalice_1001_5_hw2.ipynb`, `smithalice_late_1001_5_hw2.ipynb`
  (older zips keep `LATE` in capitals: matched case-insensitively).  All files of one user id are one submission.
- `folders`: a folder per student (`alice/hw2.ipynb`, `alice/utils.py`); the folder is the student.
- `files`: a folder of `.ipynb`/`.py` files (extensions in any case), one student per file (the original
  behaviour).

**The main file** of a student with several: the notebooks if there are any, else the `.py` files; of those,
the newest: first any whose name (without extension, and without a resubmission suffix `-1`) equals the
assignment name, ignoring case, spaces, `-` and `_`; then the latest upload: for Canvas the highest attachment id
(Canvas numbers attachments in upload order), for Moodle the latest modification time (whole seconds; Moodle's
zip keeps each file's upload time); then the highest resubmission suffix (`hw2-2` after `hw2-1` after `hw2`);
then the largest (then the first by name).  Moodle's and Gradescope's downloads hold only each student's latest
submission (Gradescope's its active one), so within it these rules pick among its files.  The candidates not
graded are kept in `Entry.others` and said wherever the choice is shown.  The other `.py` files are helpers
graded with it, under the names the student gave them (`Entry.names`).

A single file named as an LMS names it (`leecarol_1003_5020_hw2-1.ipynb`, given on the command line) is that
student's submission, exactly as inside the download's folder.

Nothing a student chooses moves a file or reaches what it must not: symbolic links are never followed, in any
layout (a linked helper is left out, `Entry.refused`; a student whose submission is only a link has the link as
the main file, which grading reports unreadable); an LMS's names are read by its fixed pattern from the left, so
a file named like another student's stays its owner's; Gradescope's metadata is read with a safe loader, bounded
in size and in what its aliases expand to, record by record (a bad record, or a bad file, leaves those
submissions named by their folders).  All of it is said: `Discovery.notices`.

Late work: Canvas's `LATE` is `Entry.late`; Gradescope's `:created_at:` is `Entry.submitted_at` (judged against
`--due` by `grader.sources.late`).  Canvas's "Test Student" (Student View; `studenttest` in file names, or a roster's
left-out row) is left out: `Discovery.left_out`, neither graded nor exported.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterable

import yaml

from grader.errors import GraderError
from grader.sources.names import job_names, safe_name, unique_names
from grader.sources.roster import Identity, Roster, is_test_student, plain_text

__all__ = [
    "LAYOUTS",
    "Discovery",
    "Entry",
    "FolderSubmission",
    "choose_main",
    "detect_layout",
    "discover",
    "folder_names",
    "gradescope_metadata",
    "gradescope_times",
    "identify",
    "is_submission_file",
    "read_folder",
    "resubmission",
    "stage",
    "student_files",
]

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "files", "folders", "moodle", "canvas", "gradescope")
SUFFIXES = (".ipynb", ".py")
GRADESCOPE_METADATA = "submission_metadata.yml"
MAX_METADATA_BYTES = 8 * 1024 * 1024  # a class of thousands takes a few hundred KiB
MAX_METADATA_WEIGHT = 8 * 1024 * 1024  # nodes plus characters once aliases are expanded: about the size itself
_ENDLESS = 2**62
MAX_FIELD = 1000  # characters kept of a name, sid, email or time in the metadata
MAX_FILES_PER_STUDENT = 200  # a student folder with more is not homework; the rest are ignored
MAX_DEPTH = 4  # folders inside a student's folder that are searched for files
MAX_STUDENT_BYTES = 64 * 1024 * 1024  # a student's data files, together, that reach the worker
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX"}

# Moodle: "Alice Smith_1001_assignsubmission_file_" (folder) or "..._assignsubmission_file_hw2.ipynb" (flat).
# Read from the left: Moodle turns `_` in the name into spaces, so the name ends at the first `_`, and what the
# student chose (the file name, after the plugin) can never hold the participant number that is read.
_MOODLE_RE = re.compile(r"^(?P<name>[^_]*)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$", re.DOTALL)
# Canvas: "smithalice[_late]_1001_5_hw2.ipynb"; the name part may hold `_` (word characters survive the clean-up),
# so it is matched lazily, from the left, and the ids anchor the rest: the first `_<user id>_<attachment id>_`
# wins, so a file the student named `leecarol_1003_5020_hw2.py` stays theirs.  Anonymous grading drops the name.
_CANVAS_RE = re.compile(
    r"^(?:(?P<login>.*?)_)??(?:(?P<late>late)_)?(?P<uid>\d+)_(?P<att>\d+)_(?P<file>.+)$", re.IGNORECASE | re.DOTALL
)
_GRADESCOPE_DIR_RE = re.compile(r"^submission_(?P<id>\d+)$")
_RESUBMISSION_RE = re.compile(r"-\d+$")  # Canvas renames a second "hw2.ipynb" of one student "hw2-1.ipynb"


@dataclass(frozen=True)
class Entry:
    """One student's submission: the file to grade, the files graded with it, and who handed it in."""

    main: Path
    files: tuple[Path, ...]  # the main file first, then helpers
    student: Identity
    names: tuple[str, ...] = ()  # per file: the name the student gave it (an LMS's prefix removed)
    layout: str = "files"
    late: bool = False  # the LMS marked it late (Canvas)
    members: tuple[Identity, ...] = ()  # a group submission's other submitters (Gradescope)
    others: tuple[str, ...] = ()  # the other candidate main files, not graded (names as the student gave them)
    submitted_at: float | None = None  # when the LMS says it was submitted (Gradescope's :created_at:), epoch seconds
    refused: tuple[str, ...] = ()  # the student's symbolic links, refused (not followed), as the student named them

    @property
    def choice(self) -> str:
        """Which file was graded when there was a choice, for the TA and the student; "" when there was none."""
        if not self.others:
            return ""
        graded = self.names[0] if self.names else self.main.name
        return (f"graded {graded} (newest of {len(self.others) + 1}; not graded: {', '.join(self.others)})")

    @property
    def refusal(self) -> str:
        """The student's symbolic links left out, for the TA and the student; "" when there were none."""
        if not self.refused:
            return ""
        return f"symbolic links are not followed; left out: {', '.join(self.refused)}"

    @property
    def staged_names(self) -> dict[str, Path]:
        """File name in the student's working folder -> the file: what grading must copy beside the main file
        so that `import utils` in the notebook finds the student's `utils.py`."""
        names = self.names or tuple(p.name for p in self.files)
        return dict(zip(names, self.files))

    def serialize(self) -> dict[str, Any]:
        return {
            "main": str(self.main), "files": [str(p) for p in self.files], "student": self.student.serialize(),
            "names": list(self.names), "layout": self.layout, "late": self.late,
            "members": [m.serialize() for m in self.members], "others": list(self.others),
            "submitted_at": self.submitted_at, "refused": list(self.refused),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        return cls(
            main=Path(data["main"]), files=tuple(Path(p) for p in data["files"]),
            student=Identity.from_dict(data["student"]), names=tuple(data.get("names", ())),
            layout=str(data.get("layout", "files")), late=bool(data.get("late", False)),
            members=tuple(Identity.from_dict(m) for m in data.get("members", ())),
            others=tuple(str(n) for n in data.get("others", ())),
            submitted_at=float(data["submitted_at"]) if isinstance(data.get("submitted_at"), (int, float)) else None,
            refused=tuple(str(n) for n in data.get("refused", ())),
        )


@dataclass(frozen=True)
class Discovery:
    """Every submission found (`entries`, unmatched ones included: they are graded all the same), those the
    roster does not know (`unmatched`), and the roster's students with no submission (`missing`)."""

    entries: tuple[Entry, ...]
    unmatched: tuple[Entry, ...] = ()
    missing: tuple[Identity, ...] = ()
    layouts: tuple[str, ...] = ()  # the layout used for each target, in order
    left_out: tuple[Entry, ...] = ()  # Canvas's "Test Student": neither graded nor exported
    notices: tuple[str, ...] = ()  # what the TA must hear about the download: links refused, metadata unreadable

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def mains(self) -> list[Path]:
        return [e.main for e in self.entries]

    def serialize(self) -> dict[str, Any]:
        return {
            "entries": [e.serialize() for e in self.entries], "unmatched": [e.serialize() for e in self.unmatched],
            "missing": [m.serialize() for m in self.missing], "layouts": list(self.layouts),
            "left_out": [e.serialize() for e in self.left_out], "notices": list(self.notices),
        }


def is_submission_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES and not path.name.startswith(".")


def discover(
    targets: list[Path], layout: str = "auto", roster: Roster | None = None, *, assignment: str = ""
) -> Discovery:
    """Entries for the files and folders in `targets` (see the module's docstring for the layouts).

    `assignment` (the rubric's assignment name) helps choose the main file of a student with several.  With a
    roster, each entry's student is the roster's (its key, name, sid, email, ids); a submission the roster
    does not know keeps what its own name says and is listed in `unmatched`.
    """
    if layout not in LAYOUTS:
        raise GraderError(f"unknown submission layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    entries: list[Entry] = []
    used: list[str] = []
    said: list[str] = []
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            chosen = detect_layout(target) if layout == "auto" else layout
            entries += _READERS[chosen](target, assignment, said)
        else:
            chosen, entry = _lone_file(target)
            entries.append(entry)
        used.append(chosen)
    said += [_link_notice(e) for e in entries if e.main.is_symlink()]
    said += [f"{e.student.label}: {e.refusal}" for e in entries if e.refused]
    tests = Roster(roster.left_out) if roster is not None else None
    left_out = tuple(e for e in entries if is_test_student(e.student.name) or (tests and tests.match(e.student)))
    entries = [e for e in entries if e not in left_out]
    if roster is None:
        return Discovery(tuple(entries), layouts=tuple(used), left_out=left_out, notices=tuple(said))
    return replace(_with_roster(entries, roster, tuple(used)), left_out=left_out, notices=tuple(said))


def _link_notice(entry: Entry) -> str:
    return f"{entry.main} is a symbolic link: not followed; {entry.student.label} is graded as unreadable"


def _with_roster(entries: list[Entry], roster: Roster, used: tuple[str, ...]) -> Discovery:
    placed: list[Entry] = []
    unmatched: list[Entry] = []
    found: set[str] = set()
    for e in entries:
        known = roster.merged(e.student)
        if known is None:
            unmatched.append(e)
            placed.append(e)
            continue
        found.add(known.key)
        members = tuple(roster.merged(m) or m for m in e.members)
        found.update(m.key for m in members)
        placed.append(replace(e, student=known, members=members))
    missing = tuple(s for s in roster.students if s.key not in found)
    return Discovery(tuple(placed), tuple(unmatched), missing, used)


def detect_layout(folder: Path) -> str:
    """The layout a folder is in, from its names alone (see the module's docstring)."""
    if (folder / GRADESCOPE_METADATA).is_file():
        return "gradescope"
    children = [p for p in _listdir(folder) if not p.name.startswith(".") and p.name not in _SKIP_DIRS]
    # Most of a Moodle download's names are Moodle's: one file a student named so (an anonymous Canvas upload
    # `1001_5_assignsubmission_file_x.py`) does not make the class Moodle's.
    if sum(bool(_MOODLE_RE.match(p.name)) for p in children) * 2 > len(children):
        return "moodle"
    files = [p for p in children if p.is_file() and is_submission_file(p)]
    dirs = [p for p in children if p.is_dir() and not p.is_symlink()]
    if files and all(_canvas_match(p.name) for p in files):
        return "canvas"
    if not files and any(student_files(d) for d in dirs):
        return "folders"
    return "files"


def _canvas_match(name: str) -> re.Match[str] | None:
    m = _CANVAS_RE.match(name)
    # Without a name part, any `1_2_x.py` would look like Canvas's; auto-detection wants the full form.
    return m if m and m.group("login") else None


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise GraderError(f"cannot list {folder}: {exc.strerror or exc}") from exc


def student_files(
    folder: Path, depth: int = 0, *, every: bool = False, refused: list[Path] | None = None
) -> list[Path]:
    """The submission files under a student's folder, hidden files and caches skipped, bounded in depth and count;
    `every`: all their regular files (data files, their own packages' modules), within MAX_STUDENT_BYTES too.
    Symbolic links are never followed; `refused` collects them."""
    found: list[Path] = []
    budget = [MAX_STUDENT_BYTES]

    def walk(current: Path, level: int) -> None:
        try:
            children = sorted(current.iterdir())
        except OSError:
            return  # an unreadable folder holds nothing gradable; the entry says so when graded
        for p in children:
            if len(found) >= MAX_FILES_PER_STUDENT:
                return
            if p.name.startswith(".") or p.name in _SKIP_DIRS:
                continue
            if p.is_symlink():
                if refused is not None:
                    refused.append(p)
                continue
            if p.is_dir():
                if level + 1 < MAX_DEPTH:
                    walk(p, level + 1)
            elif is_submission_file(p) or (every and p.is_file() and _within(p, budget)):
                found.append(p)

    walk(folder, depth)
    return found


def _within(path: Path, budget: list[int]) -> bool:
    """Whether a student's data file still fits the folder's byte budget (and takes its share of it)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size > budget[0]:
        log.warning("student file %s (%d bytes) left out: the folder's files are over %d MiB", path, size,
                    MAX_STUDENT_BYTES // 2**20)
        return False
    budget[0] -= size
    return True


@dataclass(frozen=True)
class FolderSubmission:
    """One student's folder read as grading reads it: the file to grade (None: nothing gradable), the other
    files graded beside it as (relative name, path), and the candidates the main file was chosen among."""

    main: Path | None
    helpers: tuple[tuple[str, str], ...] = ()
    candidates: tuple[str, ...] = ()


def read_folder(folder: Path, assignment: str = "") -> FolderSubmission:
    """`grader check FOLDER` and the Gradescope autograder: the notebook (or .py file) as `choose_main` picks it,
    and every other file of the student's but a second notebook, under its relative path."""
    files = student_files(folder, every=True)
    gradable = [p for p in files if is_submission_file(p)]
    if not gradable:
        return FolderSubmission(None)
    names = [p.relative_to(folder).as_posix() for p in gradable]
    main = choose_main(gradable, assignment, names)
    helpers = tuple((p.relative_to(folder).as_posix(), str(p)) for p in files
                    if p != main and by_suffix(p, p.name))
    return FolderSubmission(main, helpers, tuple(n for n in names if n.lower().endswith(".ipynb")) or tuple(names))


def _norm_stems(name: str) -> set[str]:
    """A file's stem compared with the assignment name: as written, and without a resubmission suffix."""
    stem = Path(name).stem
    return {re.sub(r"[\s\-_]+", "", s).casefold() for s in (stem, _RESUBMISSION_RE.sub("", stem))}


def resubmission(name: str) -> int:
    """Canvas's resubmission number of a file name: `hw2-2.ipynb` -> 2, `hw2.ipynb` -> 0."""
    m = _RESUBMISSION_RE.search(Path(name).stem)
    return int(m.group()[1:]) if m else 0


def choose_main(
    files: list[Path], assignment: str = "", names: list[str] | None = None, uploads: dict[Path, int] | None = None
) -> Path:
    """The file to grade among one student's files (the rule is in the module's docstring); `uploads` is an
    LMS's upload order of the files (Canvas's attachment ids), higher is newer."""
    return _candidates(files, assignment, names, uploads)[0]


def _candidates(
    files: list[Path], assignment: str = "", names: list[str] | None = None, uploads: dict[Path, int] | None = None
) -> list[Path]:
    """The files that could be the main one, the chosen first."""
    names = names or [p.name for p in files]
    by_name = dict(zip(files, names))
    notebooks = [p for p in files if by_name[p].lower().endswith(".ipynb")]
    pool = notebooks or files
    wanted = re.sub(r"[\s\-_]+", "", assignment).casefold()
    uploads = uploads or {}

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return -1

    def newest_first(p: Path) -> tuple[bool, int, int, int, str]:
        named = bool(wanted) and wanted in _norm_stems(by_name[p])
        return (not named, -uploads.get(p, -1), -resubmission(by_name[p]), -size(p), by_name[p])

    return sorted(pool, key=newest_first)


def _entry(files: list[Path], student: Identity, layout: str, assignment: str, names: list[str] | None = None,
           late: bool = False, members: tuple[Identity, ...] = (), uploads: dict[Path, int] | None = None,
           submitted_at: float | None = None) -> Entry:
    names = names or [p.name for p in files]
    gradable = [p for p, n in zip(files, names) if is_submission_file(Path(n))] or files
    main, *rest = _candidates(gradable, assignment, [names[files.index(p)] for p in gradable], uploads)
    order = [main, *(p for p in files if p != main and by_suffix(p, names[files.index(p)]))]
    # The other candidates: those not graded with it (a second notebook), and earlier versions of the main file
    # itself (`hw2.py` beside `hw2-1.py`), which stay beside it as helpers but are not what is graded.
    base = _base_stem(names[files.index(main)])
    others = [p for p in rest if p not in order or _base_stem(names[files.index(p)]) == base]
    return Entry(main, tuple(order), student, tuple(names[files.index(p)] for p in order), layout, late, members,
                 tuple(names[files.index(p)] for p in others), submitted_at)


def _base_stem(name: str) -> str:
    return _RESUBMISSION_RE.sub("", Path(name).stem).casefold()


def by_suffix(path: Path, name: str) -> bool:
    """Files graded beside the main file: modules, packages' files and data, under the student's own relative
    paths; not a second notebook (it cannot be imported, and it is another candidate for the main file)."""
    return not name.lower().endswith(".ipynb")


def _single(path: Path, key: str, layout: str = "files") -> Entry:
    return Entry(path, (path,), _probe(key), (path.name,), layout)


def _lone_file(path: Path) -> tuple[str, Entry]:
    """A file named on the command line: an LMS-named one is its student's submission, as in the download.

    The folders an LMS made (Moodle's, a Gradescope submission's beside its metadata) are read before the file's
    name, which the student chose inside them; and Moodle's flat name before Canvas's (a Moodle name ending in a
    Canvas-like file name is still the Moodle student's)."""
    if not is_submission_file(path):
        return "files", _single(path, path.stem)
    m = _MOODLE_RE.match(path.parent.name)
    people = [] if m else _gradescope_people(path)
    if people:
        return "gradescope", Entry(path, (path,), people[0], (path.name,), "gradescope", members=tuple(people[1:]))
    m = m or _MOODLE_RE.match(path.name)
    if m:
        name = m.group("rest") if m.string == path.name else path.name
        return "moodle", Entry(path, (path,), _moodle_identity(m.group("name"), m.group("pid")), (name,), "moodle")
    m = _canvas_match(path.name)
    if m:
        student = Identity(key=m.group("uid"), name=plain_text(m.group("login")), lms_ids={"canvas_id": m.group("uid")})
        return "canvas", Entry(path, (path,), student, (m.group("file"),), "canvas", bool(m.group("late")))
    return "files", _single(path, path.stem)


def _probe(text: str) -> Identity:
    """What a bare file or folder name may be: a sid, an email, a name; the roster decides which."""
    shown = plain_text(text)  # the key stays the file's stem (its folder name is made safe apart)
    return Identity(key=text, name=shown, sid=shown, email=shown if "@" in shown else "")


# -- layouts ---------------------------------------------------------------------------------------------------

def _read_files(folder: Path, assignment: str, said: list[str]) -> list[Entry]:
    # Today's behaviour: files of the folder, one level; anything not a regular file (a folder, a FIFO, a link)
    # is an entry too, so that it becomes a clear unreadable result instead of vanishing.
    return [
        _single(p, p.stem) for p in _listdir(folder)
        if not p.name.startswith(".") and (is_submission_file(p) or not p.is_file())
    ]


def _read_folders(folder: Path, assignment: str, said: list[str]) -> list[Entry]:
    entries = []
    for p in _listdir(folder):
        if p.name.startswith(".") or p.name in _SKIP_DIRS:
            continue
        if p.is_symlink() and (p.is_dir() or is_submission_file(p)):
            # A linked student folder (or file) is not followed: the link is the entry, graded unreadable.
            entries.append(Entry(p, (p,), _probe(p.stem if is_submission_file(p) else p.name), (p.name,), "folders"))
        elif p.is_dir() and not p.is_symlink():
            entries.append(_folder_entry(p, _probe(p.name), "folders", assignment))
        elif is_submission_file(p):
            entries.append(_single(p, p.stem))
    return entries


def _folder_entry(folder: Path, student: Identity, layout: str, assignment: str, **kw: Any) -> Entry:
    links: list[Path] = []
    files = student_files(folder, every=True, refused=links)
    refused = tuple(p.relative_to(folder).as_posix() for p in links)
    if not any(is_submission_file(p) for p in files):
        # Nothing gradable: the folder itself is the entry, and grading reports it unreadable (0, with a reason).
        return Entry(folder, (folder,), student, (folder.name,), layout, refused=refused, **kw)
    names = [p.relative_to(folder).as_posix() for p in files]
    return replace(_entry(files, student, layout, assignment, names, **kw), refused=refused)


def _moodle_identity(name: str, pid: str) -> Identity:
    name = plain_text(name).strip()
    if name.lower() == "participant":  # blind marking hides the name
        name = ""
    return Identity(key=pid, name=name, lms_ids={"moodle_id": pid})


def _read_moodle(folder: Path, assignment: str, said: list[str]) -> list[Entry]:
    groups: dict[tuple[str, str], list[tuple[Path, str]]] = {}
    refused: dict[tuple[str, str], list[str]] = {}
    entries: list[Entry] = []
    for p in _listdir(folder):
        if p.name.startswith(".") or p.name in _SKIP_DIRS:
            continue
        m = _MOODLE_RE.match(p.name)
        if m is None:
            entries += [_single(p, p.stem)] if is_submission_file(p) else []
            continue
        who = (m.group("name"), m.group("pid"))
        slot = groups.setdefault(who, [])
        if p.is_symlink():
            refused.setdefault(who, []).append(m.group("rest") or p.name)  # neither a flat file nor a folder is followed
        elif p.is_dir():
            # The file plugin's folder holds what the student uploaded (data files too); others (online text) only
            # what Moodle made of a form.
            every = m.group("plugin") == "file"
            inside: list[Path] = []
            slot += [(f, f.relative_to(p).as_posix()) for f in student_files(p, every=every, refused=inside)]
            refused.setdefault(who, []).extend(f.relative_to(p).as_posix() for f in inside)
        elif is_submission_file(Path(m.group("rest"))):
            slot.append((p, m.group("rest")))  # the older, flat download
    for (name, pid), files in groups.items():
        student = _moodle_identity(name, pid)
        links = tuple(refused.get((name, pid), ()))
        if not any(is_submission_file(Path(n)) for _, n in files):
            # An online-text-only or empty submission: nothing to run; the folder reports why.
            first = next(p for p in _listdir(folder) if p.name.startswith(f"{name}_{pid}_"))
            entries.append(Entry(first, (first,), student, (first.name,), "moodle",
                                 refused=() if first.is_symlink() else links))
            continue
        # Moodle's zip keeps each file's upload time as its modification time: the newer upload is the later one.
        uploads = {f: int(_mtime(f)) for f, _ in files}
        entries.append(replace(_entry([f for f, _ in files], student, "moodle", assignment, [n for _, n in files],
                                      uploads=uploads), refused=links))
    return entries


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_canvas(folder: Path, assignment: str, said: list[str]) -> list[Entry]:
    groups: dict[str, list[tuple[Path, re.Match[str]]]] = {}
    entries: list[Entry] = []
    for p in _listdir(folder):
        if p.name.startswith(".") or not is_submission_file(p):
            continue
        m = _CANVAS_RE.match(p.name)
        if m is None:
            entries.append(_single(p, p.stem))
            continue
        groups.setdefault(m.group("uid"), []).append((p, m))
    for uid, everything in groups.items():
        login = next((m.group("login") for _, m in everything if m.group("login")), "") or ""
        student = Identity(key=uid, name=plain_text(login), lms_ids={"canvas_id": uid})
        late = any(m.group("late") for _, m in everything)
        # A link is never followed: a student with only links is graded on the first (unreadable, said so).
        found = [(p, m) for p, m in everything if not p.is_symlink()] or everything[:1]
        refused = tuple(m.group("file") for p, m in everything if p.is_symlink() and (p, m) not in found)
        uploads = {p: int(m.group("att")) for p, m in found}
        entries.append(replace(_entry([p for p, _ in found], student, "canvas", assignment,
                                      [m.group("file") for _, m in found], late, uploads=uploads), refused=refused))
    return entries


class _MetadataLoader(yaml.SafeLoader):
    """Safe YAML that reads Ruby's tagged values (`!ruby/object:BigDecimal ...`) as the plain values under them;
    Python's tags (`!!python/object:...`) are refused, like any tag a safe loader does not know."""


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_MetadataLoader.add_multi_constructor("!", _plain)


@dataclass(frozen=True)
class _Records:
    """A Gradescope export's metadata: each submission folder's record, and those that could not be read."""

    records: dict[str, Any]
    problems: dict[str, str]  # folder (or the file's name, for the whole file) -> why it was not read


def _weight(root: yaml.Node) -> int:
    """What a YAML tree weighs once its aliases are expanded: nodes plus scalar characters, each shared node
    counted as often as it is used, and a node inside itself (a recursive alias) without end.  Iterative and
    memoised, so an alias bomb is weighed in linear time."""
    memo: dict[int, int] = {}
    walking: set[int] = set()  # the nodes on the path from the root to the node in hand
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            walking.discard(id(node))
            own = 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str) else 0)
            memo[id(node)] = min(own + sum(memo[id(c)] for c in _children(node)), _ENDLESS)
            continue
        if id(node) in memo:
            continue
        if id(node) in walking:
            return _ENDLESS
        walking.add(id(node))
        stack.append((node, True))
        stack += [(c, False) for c in _children(node)]
    return memo[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _compose(path: Path) -> yaml.Node | None:
    """The metadata file's YAML tree, refused (GraderError) when it is too large, too deep or too heavy."""
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            raise GraderError(f"{path.name}: larger than {MAX_METADATA_BYTES // 2**20} MiB")
        loader = _MetadataLoader(path.read_bytes())
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except OSError as exc:
        raise GraderError(f"{path.name}: cannot be read: {exc.strerror or exc}") from exc
    except RecursionError:
        raise GraderError(f"{path.name}: nested too deeply to be metadata") from None
    except yaml.YAMLError as exc:
        raise GraderError(f"{path.name}: not readable YAML ({str(exc).splitlines()[0]})") from exc
    if root is not None and _weight(root) > MAX_METADATA_WEIGHT:
        raise GraderError(f"{path.name}: its aliases expand to more than {MAX_METADATA_WEIGHT:,} values and characters "
                          "(a YAML alias bomb?)")
    return root


def _records(folder: Path) -> _Records:
    """Each submission's record of `submission_metadata.yml`, read one by one: a record that cannot be read
    (a tag no safe loader knows, say) is that submission's problem, and a file that cannot be read at all
    leaves every submission without its names, never stops the batch."""
    path = folder / GRADESCOPE_METADATA
    try:
        root = _compose(path)
    except GraderError as exc:
        return _Records({}, {path.name: str(exc)})
    if not isinstance(root, yaml.MappingNode):
        return _Records({}, {path.name: f"{path.name}: expected a mapping of submission folders to their submitters"})
    records: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key_node, value_node in root.value:
        key = plain_text(str(key_node.value)) if isinstance(key_node, yaml.ScalarNode) else "?"
        loader = _MetadataLoader("")
        try:
            records[key] = loader.construct_document(value_node)
        except (yaml.YAMLError, RecursionError, TypeError, ValueError) as exc:
            problems[key] = f"{path.name}: the record of {key} is not readable ({str(exc).splitlines()[0]})"
        finally:
            loader.dispose()
    return _Records(records, problems)


def _people(folder_name: str, record: Any) -> list[Identity]:
    gid = _GRADESCOPE_DIR_RE.match(folder_name)
    submitters = record.get(":submitters") if isinstance(record, dict) else None
    people = []
    for s in submitters if isinstance(submitters, list) else []:
        if not isinstance(s, dict):
            continue
        sid, email, name = (plain_text(str(s.get(k) or "")[:MAX_FIELD]).strip() for k in (":sid", ":email", ":name"))
        ids = {"gradescope_id": gid.group("id")} if gid else {}
        people.append(Identity(key=sid or email or folder_name, name=name, sid=sid, email=email, lms_ids=ids))
    return people


def gradescope_metadata(folder: Path) -> dict[str, list[Identity]]:
    """`submission_<id>` -> its submitters, from the export's `submission_metadata.yml` (records that cannot be
    read are left out: their submissions are named by their folders)."""
    return {name: _people(name, record) for name, record in _records(folder).records.items()}


def gradescope_times(folder: Path) -> dict[str, float]:
    """`submission_<id>` -> when it was submitted (`:created_at:`), where the export says and it can be read."""
    return _times(_records(folder))


def _times(found: _Records) -> dict[str, float]:
    from grader.sources.late import parse_time

    times = {}
    for name, record in found.records.items():
        stamp = record.get(":created_at") if isinstance(record, dict) else None
        if not stamp:
            continue
        if isinstance(stamp, datetime):  # YAML read it as a time already; one without a zone is UTC in YAML
            times[name] = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
            continue
        try:
            times[name] = parse_time(str(stamp)[:MAX_FIELD])
        except GraderError:
            continue  # an odd time says nothing: the submission is not judged late by it
    return times


def _read_gradescope(folder: Path, assignment: str, said: list[str]) -> list[Entry]:
    found = _records(folder)
    for name, why in found.problems.items():
        whom = "every submission is" if name == GRADESCOPE_METADATA else f"{name} is"
        said.append(f"{folder}/{why}; {whom} graded all the same, named by its folder")
    metadata = {name: _people(name, record) for name, record in found.records.items()}
    times = _times(found)
    entries = []
    for p in _listdir(folder):
        if p.name.startswith(".") or p.name in _SKIP_DIRS or p.name == GRADESCOPE_METADATA:
            continue
        gid = _GRADESCOPE_DIR_RE.match(p.name)
        if not (gid or p.is_dir()):
            entries += [_single(p, p.stem)] if is_submission_file(p) else []
            continue
        people = metadata.get(p.name) or []
        student = people[0] if people else Identity(
            key=p.name, lms_ids={"gradescope_id": gid.group("id")} if gid else {}
        )
        if p.is_symlink() or not p.is_dir():
            # A linked submission folder is not followed: the link is the entry, graded unreadable.
            entries.append(Entry(p, (p,), student, (p.name,), "gradescope", members=tuple(people[1:])))
            continue
        entries.append(_folder_entry(p, student, "gradescope", assignment, members=tuple(people[1:]),
                                     submitted_at=times.get(p.name)))
    return entries


_READERS = {
    "files": _read_files, "folders": _read_folders, "moodle": _read_moodle, "canvas": _read_canvas,
    "gradescope": _read_gradescope,
}


def identify(path: Path) -> Identity:
    """What a submission's own path says about its student, for a class graded before identities were stored.

    Reads the LMS naming conventions above from the folders an LMS made (Moodle's, then a Gradescope export's
    with its metadata beside it when it is still there), then from the file's name (Moodle's flat form, then
    Canvas's); else the file's stem.  The folders come first: a file a student named inside one is theirs.
    """
    m = _MOODLE_RE.match(path.parent.name)
    if m:
        return _moodle_identity(m.group("name"), m.group("pid"))
    people = _gradescope_people(path)
    if people:
        return people[0]
    m = _MOODLE_RE.match(path.name)
    if m:
        return _moodle_identity(m.group("name"), m.group("pid"))
    m = _canvas_match(path.name)
    if m:
        return Identity(key=m.group("uid"), name=plain_text(m.group("login")), lms_ids={"canvas_id": m.group("uid")})
    return _probe(path.stem)


def _gradescope_people(path: Path) -> list[Identity]:
    """The submitters of the Gradescope submission folder a file lies in (its metadata beside it), or []."""
    for folder in (path.parent, path.parent.parent):
        if _GRADESCOPE_DIR_RE.match(folder.name) and (folder.parent / GRADESCOPE_METADATA).is_file():
            return gradescope_metadata(folder.parent).get(folder.name) or []
    return []


def folder_names(entries: Iterable[Entry]) -> list[str]:
    """One output folder name per entry, unique by construction and deterministic.

    A class of plain files (layout `files`, no roster) gets exactly `grader.sources.names.job_names` (today's folder
    names, so its gradebook cache still applies).  Otherwise the student's key (`1001`, the sid), made safe;
    where two entries share a key (two files of one student), the name of the file tells them apart.
    """
    entries = list(entries)
    if all(e.layout == "files" and e.student.key == e.main.stem for e in entries):
        return job_names([e.main for e in entries])
    return unique_names([safe_name(e.student.key) for e in entries], [str(e.main) for e in entries])


def stage(entry: Entry, folder: Path) -> Path:
    """Copy an entry's files into `folder` under the names the student gave them; returns the main file's copy.

    This is the working folder grading needs for a notebook that imports its helper modules.  Names are kept
    inside `folder` (a name with `..` or an absolute path is reduced to its last part).
    """
    import shutil

    main = folder / entry.main.name
    for name, path in entry.staged_names.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            rel = Path(rel.name)
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and not path.is_symlink():
            shutil.copy2(path, dest)
        if path == entry.main:
            main = dest
    return main
