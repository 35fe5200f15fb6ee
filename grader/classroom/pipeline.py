"""Grading a class, as a library: `grade_class(options, progress)` runs the whole batch and returns a `ClassRun`.

The stages, in order: find the submissions (and the roster's students), check the rubric and its reference
(`preflight`, before any student code runs), claim the output folder, reuse the results the gradebook holds for
unchanged submissions, grade the others (here, in a local pool or on a cluster) and write each one's files as it
finishes, write the class files, then the hints a TA reads beside the grades: shared course-setup failures and
similar code.  Nothing here prints: what a person should hear while it runs comes as events to `progress`
(`Notice`, `Reused`, `GradingStarted`, `SubmissionGraded`, `GradingEnded`), and the end of the run is the
returned record.  `grader grade` (grader.cli.grade) is this with the events printed.

Resumable: each finished submission is committed to OUT/gradebook.sqlite before its files are written, and a
submission whose bytes, rubric and grader version are unchanged since its last grading is not run again
(`force=True` runs everything).  Kill the run at any moment and run it again to finish the batch.
"""
from __future__ import annotations

import enum
import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Callable, Iterator

from grader.classroom.classbook import label, matching, no_such_student
from grader.classroom.gradebook import Gradebook
from grader.classroom.outdir import OutDir, finish
from grader.classroom.similarity import Pair, write_pairs
from grader.classroom.tawork import carry_over
from grader.errors import GraderError
from grader.execution.sandbox import Launcher, hiding
from grader.feedback.terminal import one_line
from grader.grading.batch import Executor, Job
from grader.grading.course_setup import SetupProblem, setup_problems
from grader.grading.executors import run_jobs
from grader.grading.submission import preflight
from grader.grading.verdict_key import verdict_key
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric, load_rubric
from grader.sources.discover import Discovery, Entry, discover, folder_names
from grader.sources.late import LatePolicy, assess, parse_duration, parse_policy, parse_time
from grader.sources.roster import Roster

__all__ = [
    "ClassOptions", "ClassRun", "Event", "GradingEnded", "GradingStarted", "Notice", "NoticeKind", "Progress",
    "Reused", "SubmissionGraded", "grade_class",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassOptions:
    """What to grade and how: `grader grade`'s arguments.  `executor`: where submissions are graded (default:
    this process, or a local pool of `jobs` processes; `grader.grading.cluster.DaskExecutor` for a Dask cluster);
    whichever it is, only this process writes files.  `due`, `late_policy`, `extensions` (["STUDENT=2d", ...]):
    late work, as `--due`, `--late-policy` and `--extension` spell them (grader.sources.late)."""

    rubric: Path
    targets: tuple[Path, ...]
    out: Path
    jobs: int = 1
    launcher: Launcher | None = None
    device: str = "cpu"
    force: bool = False
    only: tuple[str, ...] = ()
    layout: str = "auto"
    roster: Path | None = None
    executor: Executor | None = None
    due: str | None = None
    late_policy: str | None = None
    extensions: tuple[str, ...] = ()


# -- what happens while the class is graded, as it happens ---------------------------------------------------------


class NoticeKind(str, enum.Enum):
    DOWNLOAD = "download"  # about the download itself: a link refused, metadata unreadable
    LEFT_OUT = "left_out"  # Canvas's Test Student: neither graded nor exported
    NOT_ON_ROSTER = "not_on_roster"  # graded all the same
    MISSING = "missing"  # students on the roster with no submission
    FILE_CHOICE = "file_choice"  # a student with several candidate main files: the one graded
    BACK_IN_CLASS = "back_in_class"  # a student a TA removed, graded again


@dataclass(frozen=True)
class Notice:
    """Something the person grading must hear before grading starts: nothing is silently dropped or chosen.
    `text` is one line (students' names and paths with control characters shown as escapes)."""

    kind: NoticeKind
    text: str


@dataclass(frozen=True)
class Reused:
    """`count` of the `total` submissions are unchanged since they were graded: their results are reused."""

    count: int
    total: int

    @property
    def text(self) -> str:
        return (f"{self.count} of {self.total} submissions unchanged since they were graded; reusing their results "
                "(--force grades them again)")


@dataclass(frozen=True)
class GradingStarted:
    total: int  # submissions to grade now (the reused ones are not among them)


@dataclass(frozen=True)
class SubmissionGraded:
    """One submission graded, committed to the gradebook and its files written."""

    result: SubmissionResult


@dataclass(frozen=True)
class GradingEnded:
    """The grading loop is over, however it ended (finished, interrupted, failed)."""


Event = Notice | Reused | GradingStarted | SubmissionGraded | GradingEnded
Progress = Callable[[Event], None]


def _ignore(event: Event) -> None:
    pass


# -- the end of the run --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassRun:
    """A graded class: every result in the output folder (`results`, as gradebook.csv lists them) and what
    this run did.  An interrupted run has written the class files of what it finished and stops there."""

    rubric: Rubric
    out: Path
    results: tuple[SubmissionResult, ...]
    index: Path  # the class summary, index.html
    total: int  # submissions this run was asked for
    reused: int  # of them unchanged since they were graded
    finished: int  # of them graded or reused when the run ended (all, unless interrupted)
    interrupted: bool = False
    similar: tuple[Pair, ...] = ()  # pairs of alike code, a hint for a TA
    similarity_error: str | None = None  # why `similar` could not be computed
    setup_problems: tuple[SetupProblem, ...] = ()  # one failure shared by much of the class

    @property
    def graded(self) -> int:
        """Submissions run by this run (the others were reused)."""
        return self.total - self.reused

    @property
    def needs_ta(self) -> tuple[str, ...]:
        """The student folders whose result the grader failed on: a person must look."""
        return tuple(r.student for r in self.results if r.needs_ta)


# -- the pipeline --------------------------------------------------------------------------------------------------


def grade_class(options: ClassOptions, progress: Progress | None = None) -> ClassRun:
    """Grade `options.targets` into `options.out` (results, reports, gradebook), telling `progress` as it goes.
    A bad rubric, reference or argument raises GraderError before any student code runs."""
    say = progress or _ignore
    rubric = load_rubric(options.rubric)
    preflight(rubric)  # a bad rubric or reference stops here, before any student code runs
    for target in options.targets:
        if not target.exists() and not target.is_symlink():
            raise GraderError(f"no such submission file or folder: {target}")
    roster = Roster.load(options.roster) if options.roster else None
    found = discover(list(options.targets), options.layout, roster, assignment=rubric.assignment)
    if not found:
        raise GraderError(f"no .ipynb or .py submissions in {', '.join(map(str, options.targets))}")
    _say_who_is_missing(found, say)
    out = options.out
    folder = OutDir(out)
    folder.claim(rubric)
    # The reference, the rubrics and the outputs stay out of the worker's sight even where they sit in a
    # folder it must see (a reference package installed in the virtual environment, say).
    launcher = hiding(options.launcher, [rubric.reference_path, rubric.path.parent, out]) if options.launcher else None
    entries = dict(zip(folder_names(found.entries), found.entries))
    work = [Job(str(e.main), n, str(folder.log_path(n)), _helpers(e)) for n, e in entries.items()]
    lateness = Lateness(
        parse_time(options.due, "--due") if options.due else None,
        parse_policy(options.late_policy) if options.late_policy else None,
        _extensions(list(options.extensions), entries),
    )
    if options.only:
        work = _only(work, list(options.only), entries)
    _say_which_file(entries, {job.name for job in work}, say)
    keys = {job.name: verdict_key(rubric, Path(job.path), job.helpers) for job in work}
    with folder.gradebook() as book, _interrupts() as interrupts:
        book.record_entries({job.name: entries[job.name] for job in work})  # who each folder is
        _say_who_comes_back(book, entries, {job.name for job in work}, say)
        done: dict[str, SubmissionResult] = {}
        reused = 0
        try:
            if not (options.force or options.only):
                done = {n: r for n, k in keys.items() if (r := book.cached(n, k)) is not None}
            for name, result in done.items():
                # cheap, and heals outputs a kill left unwritten; a new late policy or extension applies here too
                done[name] = _write_outputs(_identified(result, entries[name], name, lateness), rubric, out)
            book.update_results(list(done.values()))
            reused = len(done)
            if done:
                say(Reused(reused, len(work)))
            todo = [job for job in work if job.name not in done]
            graded = run_jobs(rubric, todo, workers=options.jobs, launcher=launcher, device=options.device,
                              executor=options.executor)
            say(GradingStarted(len(todo)))
            try:
                for result in graded:
                    result = _with_ta_work(result, entries[result.student], book, lateness)
                    student = finish(result, rubric)  # rendered (or its failure recorded) before anything is committed
                    with interrupts.held():  # a Ctrl-C waits until the gradebook, the files and the count agree
                        book.record(student.result, keys[result.student])  # committed first: the gradebook is the truth
                        student.write(out / result.student)
                        done[result.student] = student.result
                    if interrupts.came():  # one held above, or one whose KeyboardInterrupt Python dropped
                        raise KeyboardInterrupt
                    say(SubmissionGraded(student.result))
            finally:
                say(GradingEnded())
        except KeyboardInterrupt:
            everyone, index = folder.write_class(rubric, book)
            return ClassRun(rubric, out, tuple(everyone), index, len(work), reused, len(done), interrupted=True)
        everyone, index = folder.write_class(rubric, book)
    similar, similarity_error = _similar_code(out)
    return ClassRun(rubric, out, tuple(everyone), index, len(work), reused, len(done), similar=similar,
                    similarity_error=similarity_error, setup_problems=setup_problems(everyone))


def _similar_code(out: Path) -> tuple[tuple[Pair, ...], str | None]:
    """Similar code over the class folder, as a hint beside the grades (never a score change, never the
    batch's end: a failure here is logged and said in one line)."""
    try:
        return tuple(write_pairs(out)), None
    except Exception as exc:
        log.exception("similarity failed")
        return (), str(exc)


class _Interrupts:
    """The Ctrl-Cs a batch has seen.  Each raises KeyboardInterrupt at once, except inside `held()`, where it is
    only remembered (the loop asks `came()` after): a submission is never counted, committed and written by
    halves."""

    def __init__(self) -> None:
        self.seen = 0
        self.holding = False

    def came(self) -> bool:
        return self.seen > 0

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.seen += 1
        if not self.holding:
            raise KeyboardInterrupt


@contextmanager
def _interrupts() -> Iterator[_Interrupts]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: Python drops an exception raised in
    some callbacks (a fork's at-fork handlers, which every worker start runs; a __del__), so the batch loop also
    asks after each submission whether one came.  A run started with SIGINT ignored (a script's
    background job) keeps it ignored, as Python itself does."""
    interrupts = _Interrupts()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield interrupts
        return
    previous = signal.signal(signal.SIGINT, interrupts.handle)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGINT, previous)


def _helpers(entry: Entry) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(path)) for name, path in entry.staged_names.items() if path != entry.main)


def _say_who_is_missing(found: Discovery, say: Progress) -> None:
    """Nothing is silently dropped: links refused, unreadable metadata, submissions the roster does not know, and
    students with no submission.  Names and paths are the students' own text: said on one line, control
    characters shown as escapes (grader.feedback.terminal)."""
    for notice in found.notices:
        say(Notice(NoticeKind.DOWNLOAD, one_line(notice)))
    for entry in found.left_out:
        say(Notice(NoticeKind.LEFT_OUT,
                   f"Canvas's Test Student is left out (not graded, not exported): {one_line(entry.main)}"))
    for entry in found.unmatched:
        say(Notice(NoticeKind.NOT_ON_ROSTER, f"not on the roster (graded all the same): {one_line(entry.main)}"))
    if found.missing:
        names = ", ".join(f"{m.name or m.key}" for m in found.missing[:20])
        more = f" and {len(found.missing) - 20} more" if len(found.missing) > 20 else ""
        say(Notice(NoticeKind.MISSING,
                   f"{len(found.missing)} students on the roster have no submission: {one_line(names)}{more}"))


def _only(work: list[Job], only: list[str], entries: dict[str, Entry]) -> list[Job]:
    """The jobs `--only` names, by any key `grader.classroom.classbook.matching` accepts; an unknown name is the
    TA's typo, answered with the near candidates."""
    chosen: set[str] = set()
    for query in only:
        hits = [query] if query in entries else matching(query, entries)
        if not hits:
            raise GraderError(f"--only: {no_such_student(query, entries, '')}")
        chosen.update(hits)
    return [job for job in work if job.name in chosen]


def _say_which_file(entries: dict[str, Entry], graded: set[str], say: Progress) -> None:
    """A student with several candidate main files: which one is graded, said before grading starts."""
    for name, entry in entries.items():
        if name in graded and entry.choice:
            say(Notice(NoticeKind.FILE_CHOICE, f"{one_line(label(name, entry))}: {one_line(entry.choice)}"))


@dataclass(frozen=True)
class Lateness:
    due: float | None = None
    policy: LatePolicy | None = None
    extensions: dict[str, str] = field(default_factory=dict)  # student folder -> "2d" (--extension)


def _extensions(given: list[str], entries: dict[str, Entry]) -> dict[str, str]:
    """Folder -> extension, from the roster's `extension` column and `--extension STUDENT=2d` (which wins)."""
    found = {n: e.student.lms_ids["extension"] for n, e in entries.items() if e.student.lms_ids.get("extension")}
    for item in given:
        who, sep, length = item.rpartition("=")
        if not sep or not who:
            raise GraderError(f"--extension {item!r}: expected STUDENT=DURATION, e.g. s003=2d")
        parse_duration(length, f"--extension {item}")
        hits = [who] if who in entries else matching(who, entries)
        if not hits:
            raise GraderError(f"--extension: {no_such_student(who, entries, '')}")
        found.update({h: length for h in hits})
    for length in found.values():
        parse_duration(length, "extension")
    return found


def _say_who_comes_back(book: Gradebook, entries: dict[str, Entry], graded: set[str], say: Progress) -> None:
    """A student a TA removed (`grader remove`) and graded again is back in the class: said, not silent."""
    for name in sorted({n for n, _, _ in book.removed()} & graded):
        say(Notice(NoticeKind.BACK_IN_CLASS, f"{one_line(label(name, entries[name]))} was removed from this class "
                   "folder (grader remove); graded again, they are back in it"))


def _identified(result: SubmissionResult, entry: Entry, name: str, lateness: Lateness) -> SubmissionResult:
    """The result names its student as the roster (or the LMS's file name) does, and says if it came late."""
    who = entry.student
    if not who.name == who.key == who.sid:  # more than what a bare file name says
        result = replace(result, name=who.name, sid=who.sid or who.key)
    extension = lateness.extensions.get(name, "")
    late = assess(flagged=entry.late, submitted_at=entry.submitted_at, due=lateness.due,
                  extension_s=parse_duration(extension) if extension else 0.0, extension=extension,
                  policy=lateness.policy, flag_source=f"{entry.layout.capitalize()} marked it LATE")
    return replace(result, late=late)


def _with_ta_work(result: SubmissionResult, entry: Entry, book: Gradebook, lateness: Lateness) -> SubmissionResult:
    """A fresh result with the file choice noted and the TA's earlier scores and overrides kept (tawork)."""
    result = _identified(result, entry, result.student, lateness)
    for note in (entry.choice, entry.refusal):
        if note and note not in result.notes:
            result = replace(result, notes=(*result.notes, note))
    return carry_over(result, book.result(result.student), book.overrides(result.student))


def _write_outputs(result: SubmissionResult, rubric: Rubric, out: Path) -> SubmissionResult:
    student = finish(result, rubric)
    student.write(out / result.student)
    return student.result
