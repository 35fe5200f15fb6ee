"""`grader check SUBMISSION --rubric RUBRIC | --kit KIT`: a student's self-check on the public questions.

With `--rubric` (a TA, or a course that hands out rubric and reference) the public questions are graded as
`grader grade` grades them.  With `--kit` nothing of the reference is needed (see `grader.kit`); the exit status
is 1 when a public check fails, so a student's own CI or pre-commit hook can use it.

A check with `--kit` is answered by the kit's warm daemon (grader/cli/daemon.py), started by the first check and
kept a few minutes, unless `--no-daemon` or GRADER_DAEMON=0: it prints what this process would have printed.
So this module imports the grader's heavy parts (torch through the checks) only where it checks in-process.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from grader.cli import daemon
from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.execution.sandbox import Launcher
    from grader.kit.schema import KitFile
    from grader.results import SubmissionResult
    from grader.rubric.schema import Limits


def run(args: argparse.Namespace) -> int:
    """`grader check` as the command line gives it: through the kit's daemon where one may be used, else here."""
    report = None if args.no_report else report_path(args)
    if args.kit is not None and daemon.wanted(args.no_daemon):
        reply = ask_daemon(args.submission, args.kit, sandbox=args.sandbox, device=args.device, as_json=args.json,
                           question=args.question, report=report)
        if reply is not None:
            return reply.play()
    from grader.execution.launchers import choose_launcher

    return check(args.submission, args.rubric, kit_path=args.kit, launcher=choose_launcher(args.sandbox),
                 as_json=args.json, question=args.question, device=args.device, report=report)


def daemon_options(sandbox: str, device: str) -> dict[str, str | None]:
    """The options of `grader check --kit` that decide a verdict: part of the daemon's key."""
    return {"sandbox": sandbox, "device": device}


def ask_daemon(
    submission: Path,
    kit_path: Path,
    *,
    sandbox: str,
    device: str,
    as_json: bool = False,
    question: str | None = None,
    report: Path | None = None,
) -> daemon.Reply | None:
    """The check's output and exit status from the daemon of this kit (started where none listens), or None:
    then the caller checks in this process, which says whatever was wrong (a missing kit, say)."""
    folder = daemon.state_dir()
    if folder is None:
        return None
    try:
        key = daemon.key_for(kit_path, daemon_options(sandbox, device))
    except OSError:
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    request = daemon.CheckRequest(key, os.getcwd(), str(submission), str(kit_path), question, as_json,
                                  None if report is None else str(report), umask, daemon.Terminal.here())
    argv = [sys.executable, "-m", "grader.cli.check_daemon", "--kit", str(kit_path.resolve()), "--key", key,
            "--sandbox", sandbox, "--device", device, "--idle", str(daemon.idle_seconds())]
    return daemon.ask(daemon.Place(folder, key), request, argv)


def report_path(args: argparse.Namespace) -> Path:
    """`--report`, or `NAME.report.html` beside the submission (never over the submission itself)."""
    if args.report is not None:
        return Path(args.report)
    return Path(args.submission).with_name(Path(args.submission).stem + ".report.html")


def write_check_report(result: SubmissionResult, path: Path, *, as_json: bool) -> None:
    """The student's report.html of this check: the loss curves, the failing inputs and every explanation the
    terminal has no room for."""
    from grader.atomic import atomic_write
    from grader.feedback.report import render_report

    try:
        atomic_write(path, render_report(result))
    except OSError as exc:
        print(f"the report could not be written to {path}: {exc.strerror or exc}", file=sys.stderr)
        return
    # On stderr: stdout ends with the one honest summary line (or is the JSON), which scripts read.
    print(f"report: {path}", file=sys.stderr)


def submission_files(submission: Path, assignment: str) -> tuple[Path, tuple[tuple[str, str], ...]]:
    """The file to check and the student's other files, as grading finds them: a folder (the notebook and the
    student's own modules, packages and data) is read as a folder submission is; a file is checked alone."""
    from grader.sources.discover import read_folder

    if not submission.is_dir() or submission.is_symlink():
        return submission, ()
    found = read_folder(submission, assignment)
    if found.main is None:
        raise GraderError(f"{submission} holds no .ipynb notebook or .py file to check")
    if len(found.candidates) > 1:  # a choice among several is said, never made quietly
        print(f"checking {found.main.relative_to(submission).as_posix()} (of {len(found.candidates)} candidates: "
              f"{', '.join(found.candidates)}; give the file itself to check another)", file=sys.stderr)
    return found.main, found.helpers


def check(
    submission: Path,
    rubric_path: Path | None = None,
    *,
    kit_path: Path | None = None,
    launcher: Launcher | None = None,
    as_json: bool = False,
    question: str | None = None,
    device: str = "cpu",
    report: Path | None = None,
) -> int:
    if kit_path is not None:
        return check_kit(
            submission, kit_path, launcher=launcher, as_json=as_json, question=question, device=device, report=report
        )
    if rubric_path is None:
        raise GraderError("grader check needs --kit KIT (or, for a TA, --rubric RUBRIC)")
    if question is not None:
        raise GraderError("--question works with --kit")
    from grader.classroom.score_files import gradescope
    from grader.feedback.terminal import print_check
    from grader.grading.submission import grade_submission
    from grader.rubric.schema import load_rubric

    rubric = load_rubric(rubric_path)
    main, helpers = submission_files(submission, rubric.assignment)
    result = grade_submission(rubric, main, launcher=launcher, public_only=True, device=device, helpers=helpers)
    if as_json:
        print(json.dumps(gradescope(result), indent=2))
    else:
        print_check(result)
    if report is not None:
        write_check_report(result, report, as_json=as_json)
    return 0


def check_kit(
    submission: Path,
    kit_path: Path,
    *,
    launcher: Launcher | None = None,
    as_json: bool = False,
    question: str | None = None,
    device: str = "cpu",
    report: Path | None = None,
    kit: KitFile | None = None,
) -> int:
    """A check against the kit at `kit_path`; `kit` is that file already read (the daemon holds it)."""
    from grader.kit.schema import read_kit, read_limits

    def read() -> KitFile:  # decoding the kit's values imports torch; then the checks
        read_kit_file = read_kit(kit_path) if kit is None else kit
        if question is not None:
            read_kit_file.question(question)  # an unknown id is the user's mistake: said before any code runs
        for module in ("grader.kit.run", "grader.kit.show"):  # the checks and the views, in this thread too
            import_module(module)
        return read_kit_file

    kit = beside_zygote(lambda: launcher, read_limits(kit_path) if kit is None else kit.limits, read)
    from grader.kit.run import check_submission
    from grader.kit.show import print_report

    main, helpers = submission_files(submission, kit.assignment)
    checked = check_submission(kit, kit_path, main, launcher=launcher, device=device, question=question, helpers=helpers)
    if as_json:
        print(json.dumps(checked.results_json(), indent=2))
    else:
        print_report(checked)
    if report is not None:
        write_check_report(checked.result, report, as_json=as_json)
    return checked.exit_code


T = TypeVar("T")


def beside_zygote(launcher: Callable[[], Launcher | None], limits: Limits | None, work: Callable[[], T]) -> T:
    """`work()` (reading the kit, importing torch and the checks) in a thread while this thread starts the warm
    launcher's zygote with `limits`, so that its torch import runs beside this process's own.  The zygote is
    started from this thread, not the other: a sandbox dies with the thread that started it (bwrap
    --die-with-parent).  `launcher` is called after the thread starts (the sandbox probe overlaps it too)."""
    from grader.execution.zygote import WarmLauncher, prestart

    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as exc:  # noqa: BLE001 - raised below, in this thread
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        chosen = launcher()
        if isinstance(chosen, WarmLauncher) and limits is not None:
            try:
                prestart(chosen, limits)
            except Exception:  # the first worker starts it again, or runs without it, as ever
                logging.getLogger(__name__).warning("the zygote did not start early", exc_info=True)
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return done[0]
