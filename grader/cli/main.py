"""The `grader` command: argument parsing and the one top-level error handler."""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Callable, NoReturn

from grader import __version__
from grader.errors import GraderError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Grade deep-learning homework.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade submissions and write results, reports and a gradebook")
    g.add_argument("rubric", type=Path)
    g.add_argument("submissions", type=Path, nargs="+", help="notebooks, .py files or folders of them")
    g.add_argument("--out", type=Path, required=True, help="output folder")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    g.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda' for training checks")
    g.add_argument("--force", action="store_true", help="grade again submissions the gradebook already holds")
    g.add_argument("--only", action="append", metavar="STUDENT", help="grade (again) only this student's submission "
                   "(sid, email, LMS id, name in either order, folder or file name; repeat for more); the class "
                   "files keep everyone")
    g.add_argument("--layout", default="auto", choices=("auto", "files", "folders", "moodle", "canvas", "gradescope"),
                   help="how the submissions are laid out (default: detected per folder; see docs/lms.md)")
    g.add_argument("--roster", type=Path, help="a CSV of students (id, name, email, LMS ids) naming each submission")
    g.add_argument("--due", metavar="TIME", help="the due time (2026-12-01T23:59, local unless an offset is given): "
                   "submissions the LMS dates later are late")
    g.add_argument("--late-policy", metavar="POLICY", help="what late work loses, e.g. "
                   "'grace=15min,per_day=10%%,max_days=3' (default: nothing; late work is still shown)")
    g.add_argument("--extension", action="append", metavar="STUDENT=DURATION", help="more time for one student, "
                   "e.g. s003=2d (repeat for more; or the roster's `extension` column)")
    cluster = g.add_mutually_exclusive_group()
    cluster.add_argument("--cluster", metavar="ADDRESS", help="grade on a Dask cluster: its scheduler's address, "
                         "e.g. tcp://HOST:8786 (see docs/dask.md); --jobs is then the cluster's")
    cluster.add_argument("--scheduler-file", type=Path, metavar="FILE", help="grade on the Dask cluster whose "
                         "scheduler wrote FILE (`dask scheduler --scheduler-file FILE`)")
    g.add_argument("--cluster-wait", type=float, default=60.0, metavar="SECONDS", help="with a cluster: how long to "
                   "wait for its scheduler, a first worker and (training on cuda) a GPU worker (default: %(default)s)")
    _sandbox_option(g, "grade")

    c = sub.add_parser("check", help="self-check one submission on the public questions")
    c.add_argument("submission", type=Path)
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--kit", type=Path, help="the student kit of the assignment (made by `grader kit`)")
    source.add_argument("--rubric", type=Path, help="the rubric (needs its reference: for TAs)")
    c.add_argument("--json", action="store_true", help="print the result as results.json (Gradescope's schema)")
    c.add_argument("--question", help="check only this question (with --kit), e.g. q1.3")
    c.add_argument("--report", type=Path, help="where to write the HTML report (default: NAME.report.html beside the submission)")
    c.add_argument("--no-report", action="store_true", help="write no HTML report")
    c.add_argument("--device", default="cpu", help="'auto', 'cpu' or 'cuda' for training checks (default: %(default)s)")
    c.add_argument("--no-daemon", action="store_true", help="check in this process only (also GRADER_DAEMON=0); by "
                   "default a kit's check is kept warm in the background for a few minutes (GRADER_DAEMON_IDLE seconds)")
    _sandbox_option(c, "check")

    k = sub.add_parser("kit", help="write the student kit of a rubric: public checks without the solutions")
    k.add_argument("rubric", type=Path)
    # dest: `args.out` is a folder for the other verbs (the log goes there); this one is a file.
    k.add_argument("--out", dest="kit_file", type=Path, required=True, help="the kit file to write, e.g. cnn-rnn.kit.zip")

    v = sub.add_parser("validate", help="check a rubric: reference, blank and example scores, mutation analysis")
    v.add_argument("rubric", type=Path)
    v.add_argument("--examples", type=Path, help="a folder of example submissions with an expected.yaml of their points")
    v.add_argument("--allow", type=Path, help="the allow-list of equivalent mutants (default: rubrics/mutants/<rubric>.yaml)")
    v.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes grading at once (default: %(default)s)")
    v.add_argument("--no-mutants", dest="mutants", action="store_false", help="skip the mutation analysis")
    v.add_argument("--json", action="store_true", help="print the whole validation as JSON")
    v.add_argument("--device", default="cpu", help="'auto', 'cpu' or 'cuda' for training checks (default: %(default)s)")
    _sandbox_option(v, "validate")

    m = sub.add_parser("manual", help="enter TA scores for free-text questions (prompts, or import/export a file)")
    m.add_argument("action", nargs="?", choices=["import", "export"], help="omit to be prompted in the terminal")
    m.add_argument("file", type=Path, nargs="?", help="the CSV/YAML file to import, or the CSV to export to")
    m.add_argument("--out", type=Path, required=True, help="the folder `grader grade` wrote")
    m.add_argument("--rubric", type=Path, help="the rubric it was graded with (default: OUT/rubric-path)")
    m.add_argument("--ta", default="", help="the TA's name, kept with each score")
    m.add_argument("--rescore", action="store_true", help="prompt for answers already scored, too")

    # LMS round trip.  Positional class folders are `folder`, not `out`: these verbs only read, and must not
    # start a log file in the class folder.
    e = sub.add_parser("export", help="grades to Canvas or Moodle, or a Gradescope autograder")
    lms = e.add_subparsers(dest="lms", required=True)
    ec = lms.add_parser("canvas", help="Canvas gradebook import CSV of a graded class")
    ec.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    ec.add_argument("--roster", type=Path, required=True, help="the class roster CSV")
    ec.add_argument("--to", type=Path, required=True, help="the CSV file to write")
    ec.add_argument("--assignment-title", help="the assignment's title in Canvas (default: the rubric's assignment)")
    ec.add_argument("--assignment-id", help="Canvas's assignment id; without it Canvas creates a new assignment")
    em = lms.add_parser("moodle", help="Moodle grade import CSV of a graded class")
    em.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    em.add_argument("--roster", type=Path, required=True, help="the class roster CSV")
    em.add_argument("--to", type=Path, required=True, help="the CSV file to write")
    em.add_argument("--assignment-title", help="the grade column's title (default: the rubric's assignment)")
    em.add_argument("--key", choices=["email", "idnumber"], default="email",
                    help="the column Moodle identifies users by (default: %(default)s)")
    eg = lms.add_parser("gradescope", help="Gradescope autograder zip of a rubric")
    eg.add_argument("rubric", type=Path)
    eg.add_argument("--out", dest="zip_file", type=Path, required=True, help="the zip to write, e.g. autograder.zip")
    o = sub.add_parser("override", help="a TA's score for one question of one student, with a reason; kept on re-grading")
    o.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    o.add_argument("student", help="the student: sid, email, LMS id, name (either order) or folder name")
    o.add_argument("question", help="the question id, e.g. q1.4")
    o.add_argument("score", type=float, help="the question's new score")
    o.add_argument("--reason", required=True, help="why; shown to the student and kept in the gradebook")
    o.add_argument("--ta", default="", help="who decided (default: the login name)")
    rm = sub.add_parser("remove", help="take a student out of a class folder (kept in the gradebook's history)")
    rm.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    rm.add_argument("student", help="the student: sid, email, LMS id, name (either order) or folder name")
    rm.add_argument("--reason", default="", help="why, kept in the gradebook")
    sh = sub.add_parser("show", help="one student's result of a graded class, in the terminal")
    sh.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    sh.add_argument("student", help="the student: sid, email, LMS id, name (either order) or folder name")
    sv = sub.add_parser("serve", help="the TA's workspace in the browser over a graded class folder")
    sv.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    sv.add_argument("--rubric", type=Path, help="the rubric it was graded with (default: FOLDER/rubric-path)")
    sv.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: %(default)s, this machine only)")
    sv.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    sv.add_argument("--ta", default="", help="the TA's name, kept with each change (default: the login name)")
    si = sub.add_parser("similarity", help="pairs of submissions whose code is alike (a hint for a TA)")
    si.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    si.add_argument("--against", type=Path, nargs="+", default=[], metavar="OLD_OUT",
                    help="earlier classes' folders to compare with, too")
    si.add_argument("--threshold", type=float, default=0.5, help="the lowest score printed (default: %(default)s)")
    st = sub.add_parser("status", help="a graded class: graded, pending TA scores, unreadable, timed out, needs a TA")
    st.add_argument("folder", type=Path, help="the folder `grader grade` wrote")
    return parser


def _sandbox_option(parser: argparse.ArgumentParser, command: str) -> None:
    from grader.execution.sandbox import SANDBOX_MODES, default_sandbox_mode

    parser.add_argument(
        "--sandbox", choices=SANDBOX_MODES, default=default_sandbox_mode(command),
        help="run student code in bubblewrap: 'required' refuses to run without it, 'auto' falls back to "
        "resource limits only (with a warning), 'off' never uses it (default: %(default)s)",
    )


def _log_file(args: argparse.Namespace) -> Path:
    out: Path | None = getattr(args, "out", None)
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            return Path(out) / "grader.log"
        except OSError:
            pass
    return default_log_file()


def default_log_file() -> Path:
    """The log of a command that writes no folder (`grader check`, its daemon)."""
    return Path(tempfile.gettempdir()) / "grader.log"


def run(args: argparse.Namespace) -> int:  # noqa: C901 (one branch per verb)
    """The verb's own module, imported only when that verb runs (`grader status` never loads torch)."""
    if args.command == "grade":
        from grader.cli.grade import grade
        from grader.execution.launchers import choose_launcher

        executor = None
        if args.cluster or args.scheduler_file:
            from grader.grading.cluster import DaskExecutor

            # Each worker chooses its own launcher with this mode; this machine needs no sandbox of its own.
            executor = DaskExecutor(args.cluster, str(args.scheduler_file) if args.scheduler_file else None,
                                    sandbox=args.sandbox, wait=args.cluster_wait)
        return grade(
            args.rubric, args.submissions, args.out, jobs=max(1, args.jobs), device=args.device,
            launcher=None if executor else choose_launcher(args.sandbox), force=args.force, only=args.only,
            layout=args.layout, roster=args.roster, executor=executor, due=args.due, late_policy=args.late_policy,
            extensions=args.extension,
        )
    if args.command == "check":
        from grader.cli import check

        return check.run(args)
    if args.command == "kit":
        from grader.cli.kit import kit

        return kit(args.rubric, args.kit_file)
    if args.command == "validate":
        from grader.cli.validate import validate
        from grader.execution.launchers import choose_launcher

        return validate(
            args.rubric, args.examples, allow=args.allow, launcher=choose_launcher(args.sandbox), device=args.device,
            jobs=max(1, args.jobs), mutants=args.mutants, as_json=args.json,
        )
    if args.command == "manual":
        from grader.cli.manual import run_manual

        return run_manual(args.action, args.file, args.out, args.rubric, ta=args.ta, rescore=args.rescore)
    if args.command == "export":
        from grader.cli import export

        if args.lms == "canvas":
            return export.export_canvas(args.folder, args.roster, args.to, title=args.assignment_title,
                                        assignment_id=args.assignment_id)
        if args.lms == "moodle":
            return export.export_moodle(args.folder, args.roster, args.to, title=args.assignment_title, key=args.key)
        return export.export_gradescope(args.rubric, args.zip_file)
    if args.command in ("override", "remove"):
        from grader.cli import override

        if args.command == "remove":
            return override.remove(args.folder, args.student, args.reason)
        return override.override(args.folder, args.student, args.question, args.score, args.reason, args.ta)
    if args.command == "show":
        from grader.cli.show import show

        return show(args.folder, args.student)
    if args.command == "serve":
        from grader.cli.serve import serve

        return serve(args.folder, args.rubric, host=args.host, port=args.port, ta=args.ta)
    if args.command == "similarity":
        from grader.cli.similarity import similarity

        return similarity(args.folder, args.against, args.threshold)
    if args.command == "status":
        from grader.cli.status import status

        return status(args.folder)
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_path = _log_file(args)
    logging.basicConfig(filename=log_path, level=logging.INFO, format=LOG_FORMAT)
    return guarded(lambda: run(args), log_path)


LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def guarded(command: Callable[[], int], log_path: Path) -> int:
    """Run `command`; a failure is one line on stderr and its exit status (the whole story in the log).  The
    check daemon answers through this too, so its failures read as the command's own."""
    try:
        return command()
    except GraderError as exc:
        logging.getLogger("grader").error("%s\n%s", exc, traceback.format_exc())
        print(f"grader: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`grader show OUT s1 | head`): stop quietly, as other command-line tools do.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so Python's flush at exit does not fail again
        except (OSError, ValueError):  # not a file (the daemon's capture): nothing to flush at exit
            pass
        return 141
    except Exception as exc:  # noqa: BLE001 - one line here, the whole story in the log
        logging.getLogger("grader").critical("internal error\n%s", traceback.format_exc())
        print(f"grader: internal error: {exc!r} (details in {log_path})", file=sys.stderr)
        return 3


def entry() -> NoReturn:
    """The `grader` command: `main`, then an exit without Python's teardown of every module torch loaded (about
    0.6 s of nothing on each command that imported it).  What has to happen at exit still happens here, in
    Python's order: threads that are not daemons are joined, the atexit handlers run (the fork server and the
    workers stopped, temporary folders removed, the log flushed), then the standard streams are flushed."""
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # noqa: SLF001 - what Python runs at exit; it has no public name
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python's own exit would say 120; the command said its own
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
