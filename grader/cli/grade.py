"""`grader grade RUBRIC SUBMISSION_OR_DIR... --out DIR`: grade a class, write results, reports, gradebook.

Resumable: each finished submission is committed to DIR/gradebook.sqlite before its files are written, and a
submission whose bytes, rubric and grader version are unchanged since its last grading is not run again
(`force=True` runs everything).  Kill the command at any moment and run it again to finish the batch.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Callable, Iterator

from grader.classroom.classbook import label, matching, no_such_student, record_entries
from grader.classroom.gradebook import Gradebook
from grader.classroom.outdir import OutDir, finish
from grader.classroom.tawork import carry_over
from grader.errors import GraderError
from grader.execution.sandbox import Launcher, hiding
from grader.feedback.terminal import GradeProgress, one_line, print_summary
from grader.grading.batch import Executor, Job
from grader.grading.course_setup import setup_problems
from grader.grading.executors import run_jobs
from grader.grading.submission import preflight
from grader.grading.verdict_key import verdict_key
from grader.results import SubmissionResult
from grader.rubric.schema import Rubric, load_rubric
from grader.sources.discover import Discovery, Entry, discover, folder_names
from grader.sources.late import LatePolicy, assess, parse_duration, parse_policy, parse_time
from grader.sources.roster import Roster

log = logging.getLogger(__name__)


def grade(
    rubric_path: Path,
    targets: list[Path],
    out: Path,
    *,
    jobs: int = 1,
    launcher: Launcher | None = None,
    device: str = "cpu",
    force: bool = False,
    only: list[str] | None = None,
    layout: str = "auto",
    roster: Path | None = None,
    executor: Executor | None = None,
    due: str | None = None,
    late_policy: str | None = None,
    extensions: list[str] | None = None,
) -> int:
    """`executor`: where submissions are graded (default: this process, or a local pool of `jobs` processes;
    `grader.grading.cluster.DaskExecutor` for a Dask cluster).  Whichever it is, only this process writes files.
    `due`, `late_policy`, `extensions` (["STUDENT=2d", ...]): late work, see `grader.sources.late`."""
    rubric = load_rubric(rubric_path)
    preflight(rubric)  # a bad rubric or reference stops here, before any student code runs
    for target in targets:
        if not target.exists() and not target.is_symlink():
            raise GraderError(f"no such submission file or folder: {target}")
    found = discover(targets, layout, Roster.load(roster) if roster else None, assignment=rubric.assignment)
    if not found:
        raise GraderError(f"no .ipynb or .py submissions in {', '.join(map(str, targets))}")
    _say_who_is_missing(found)
    folder = OutDir(out)
    folder.claim(rubric)
    # The reference, the rubrics and the outputs stay out of the worker's sight even where they sit in a
    # folder it must see (a reference package installed in the virtual environment, say).
    launcher = hiding(launcher, [rubric.reference_path, rubric.path.parent, out]) if launcher else None
    entries = dict(zip(folder_names(found.entries), found.entries))
    work = [Job(str(e.main), n, str(folder.log_path(n)), _helpers(e)) for n, e in entries.items()]
    lateness = Lateness(parse_time(due, "--due") if due else None, parse_policy(late_policy) if late_policy else None,
                        _extensions(extensions or [], entries))
    if only:
        work = _only(work, only, entries)
    _say_which_file(entries, {job.name for job in work})
    keys = {job.name: verdict_key(rubric, Path(job.path), job.helpers) for job in work}
    todo: list[Job] = []
    with folder.gradebook() as book, _interrupts() as interrupted:
        record_entries(book.path, {job.name: entries[job.name] for job in work})  # who each folder is
        _say_who_comes_back(book, entries, {job.name for job in work})
        try:
            done = {} if force or only else {n: r for n, k in keys.items() if (r := book.cached(n, k)) is not None}
            for name, result in done.items():
                # cheap, and heals outputs a kill left unwritten; a new late policy or extension applies here too
                done[name] = _write_outputs(_identified(result, entries[name], name, lateness), rubric, out)
            book.update_results(list(done.values()))
            if done:
                print(f"{len(done)} of {len(work)} submissions unchanged since they were graded; reusing their "
                      "results (--force grades them again)", file=sys.stderr)
            todo = [job for job in work if job.name not in done]
            for result in GradeProgress(len(todo)).track(run_jobs(rubric, todo, workers=jobs, launcher=launcher, device=device, executor=executor)):
                result = _with_ta_work(result, entries[result.student], book, lateness)
                student = finish(result, rubric)  # rendered (or its failure recorded) before anything is committed
                book.record(student.result, keys[result.student])  # committed first: the gradebook is the truth
                student.write(out / result.student)
                done[result.student] = student.result
                if interrupted():  # a Ctrl-C whose KeyboardInterrupt Python dropped (see _interrupts)
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            _, index = folder.write_class(rubric, book)
            print(f"grader: interrupted: {len(done)} of {len(work)} submissions are graded and in {index} and "
                  f"gradebook.csv; run the same command again to grade the other {len(work) - len(done)}",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        everyone, index = folder.write_class(rubric, book)
    print_summary(everyone, rubric)
    print(f"graded {len(todo)} submissions, {len(work) - len(todo)} unchanged; {len(everyone)} in the class "
          f"folder; class summary: {index}")
    _similar_code(out)
    problems = setup_problems(everyone)
    for problem in problems:  # first: it explains many zeros at once
        print(f"grader: needs a TA: course setup: {problem.line}", file=sys.stderr)
    flagged = [r.student for r in everyone if r.needs_ta]
    if flagged:
        print(f"grader: {len(flagged)} submission{'s' if len(flagged) > 1 else ''} need a TA (grader error; "
              f"details in {out / 'grader.log'} and their report-ta.html): {', '.join(flagged)}", file=sys.stderr)
    return EXIT_NEEDS_TA if flagged or problems else 0


def _similar_code(out: Path) -> None:
    """`grader similarity` over the class folder, as a hint beside the grades (never a score change, never the
    batch's end: a failure here is logged and said in one line)."""
    from grader.classroom.similarity import REPORT, write_pairs

    try:
        pairs = write_pairs(out)
    except Exception as exc:
        log.exception("similarity failed")
        print(f"grader: similar code not computed: {exc}", file=sys.stderr)
        return
    if pairs:
        print(f"similar code: {len(pairs)} pair(s) to look at, a hint for a TA (grader similarity {out}; "
              f"{out / REPORT}; grader serve {out})")


@contextmanager
def _interrupts() -> Iterator[Callable[[], bool]]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: Python drops an exception raised in
    some callbacks (a fork's at-fork handlers, which every worker start runs; a __del__), so the batch loop also
    asks after each submission whether one came."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)


EXIT_NEEDS_TA = 1  # grading finished, every file was written, and some submissions need a person
EXIT_INTERRUPTED = 130


def _helpers(entry: Entry) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(path)) for name, path in entry.staged_names.items() if path != entry.main)


def _say_who_is_missing(found: Discovery) -> None:
    """Nothing is silently dropped: links refused, unreadable metadata, submissions the roster does not know, and
    students with no submission.  Names and paths are the students' own text: printed on one line, control
    characters shown as escapes (grader.feedback.terminal)."""
    for notice in found.notices:
        print(f"grader: {one_line(notice)}", file=sys.stderr)
    for entry in found.left_out:
        print(f"grader: Canvas's Test Student is left out (not graded, not exported): {one_line(entry.main)}",
              file=sys.stderr)
    for entry in found.unmatched:
        print(f"grader: not on the roster (graded all the same): {one_line(entry.main)}", file=sys.stderr)
    if found.missing:
        names = ", ".join(f"{m.name or m.key}" for m in found.missing[:20])
        more = f" and {len(found.missing) - 20} more" if len(found.missing) > 20 else ""
        print(f"grader: {len(found.missing)} students on the roster have no submission: {one_line(names)}{more}",
              file=sys.stderr)


def _only(work: list[Job], only: list[str], entries: dict[str, Entry]) -> list[Job]:
    """The jobs `--only` names, by any key `grader.classroom.classbook.matching` accepts; an unknown name is the TA's typo,
    answered with the near candidates."""
    chosen: set[str] = set()
    for query in only:
        hits = [query] if query in entries else matching(query, entries)
        if not hits:
            raise GraderError(f"--only: {no_such_student(query, entries, '')}")
        chosen.update(hits)
    return [job for job in work if job.name in chosen]


def _say_which_file(entries: dict[str, Entry], graded: set[str]) -> None:
    """A student with several candidate main files: which one is graded, said before grading starts."""
    for name, entry in entries.items():
        if name in graded and entry.choice:
            print(f"grader: {one_line(label(name, entry))}: {one_line(entry.choice)}", file=sys.stderr)


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


def _say_who_comes_back(book: Gradebook, entries: dict[str, Entry], graded: set[str]) -> None:
    """A student a TA removed (`grader remove`) and graded again is back in the class: said, not silent."""
    for name in sorted({n for n, _, _ in book.removed()} & graded):
        print(f"grader: {one_line(label(name, entries[name]))} was removed from this class folder (grader remove); graded "
              "again, they are back in it", file=sys.stderr)


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
    """A fresh result with the file choice noted and the TA's earlier scores and overrides kept (grader.classroom.tawork)."""
    result = _identified(result, entry, result.student, lateness)
    for note in (entry.choice, entry.refusal):
        if note and note not in result.notes:
            result = replace(result, notes=(*result.notes, note))
    return carry_over(result, book.result(result.student), book.overrides(result.student))


def _write_outputs(result: SubmissionResult, rubric: Rubric, out: Path) -> SubmissionResult:
    student = finish(result, rubric)
    student.write(out / result.student)
    return student.result
