"""Gradescope's autograder: the zip `grader export gradescope` writes, and what runs inside it.

Gradescope's specification (gradescope-autograders.readthedocs.io): the uploaded zip holds `setup.sh` and
`run_autograder` at its root; it is unpacked in `/autograder/source`, `setup.sh` runs once when the image is
built, and for each submission `run_autograder` runs with the student's files in `/autograder/submission`,
`/autograder/submission_metadata.json` describing the submission (`users`: `name`, `email`, `id`), and must
write `/autograder/results/results.json` (`score`, `tests` with `name`, `score`, `max_score`, `status`,
`output`, `visibility`; what `grader.classroom.score_files.gradescope` builds).

The zip: `setup.sh`, `run_autograder`, `assignment/` (the rubric and its reference with the course modules it
imports, at their relative places), `dl-grader/` (a source copy of this package, installed by `setup.sh`).

`run_autograder` honours, for tests and local trials: `GRADER_AUTOGRADER_ROOT` (default `/autograder`),
`GRADER_PYTHON` (default the venv `setup.sh` made) and `GRADER_SANDBOX` (default `auto`).

Where the student's code runs (`autograder_launcher`): in bubblewrap where it can start; else, as Gradescope
runs the autograder as root in a container without user namespaces, as an unprivileged user that cannot read
the autograder's files (`grader.execution.user_sandbox`), every process of which is killed before `results.json` is
written, by the grader alone.  Only where neither is possible (not root, no bubblewrap, or `GRADER_SANDBOX=off`)
does it run with the autograder's own rights, and the results say so.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any

from grader.errors import GraderError

__all__ = ["ROOT_ENV", "build_autograder", "run_autograder"]

ROOT_ENV = "GRADER_AUTOGRADER_ROOT"
_PACKAGE_SUFFIXES = (".py", ".j2", ".typed")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, building the autograder image: a Python 3.11+ venv holding dl-grader.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3.11 python3.11-venv \\
  || apt-get install -y --no-install-recommends python3 python3-venv
PY="$(command -v python3.11 || command -v python3)"
"$PY" -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
# torch's CPU wheels: the autograder has no GPU, and they are a fraction of the CUDA build's size.
/autograder/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu "/autograder/source/dl-grader[grade]"
{requires}"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; it grades /autograder/submission into
# /autograder/results/results.json.  GRADER_AUTOGRADER_ROOT and GRADER_PYTHON let it run elsewhere (tests).
ROOT="${{GRADER_AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{GRADER_PYTHON:-$ROOT/venv/bin/python}}"
export GRADER_SANDBOX="${{GRADER_SANDBOX:-auto}}"
exec "$PYTHON" -m grader.classroom.autograder --root "$ROOT" --rubric "$ROOT/source/assignment/{rubric}"
"""


def _package_files() -> tuple[Path, list[Path]]:
    package = Path(__file__).resolve().parents[1]
    project = package.parent
    if not (project / "pyproject.toml").is_file():
        raise GraderError(
            "grader export gradescope packs the dl-grader source tree, and this installation has none "
            f"(no pyproject.toml beside {package}); run it from a checkout of dl-grader"
        )
    files = [
        p for p in sorted(package.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and (p.suffix in _PACKAGE_SUFFIXES or "templates" in p.parts)
    ]
    return project, files


def _pip_requires(requires: tuple[str, ...]) -> str:
    """setup.sh's line installing what the rubric's `requires:` lists (none: nothing)."""
    if not requires:
        return ""
    quoted = " ".join(shlex.quote(r) for r in requires)
    return f"# What the rubric requires beyond dl-grader (its `requires:`).\n/autograder/venv/bin/pip install {quoted}\n"


def _executable(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 << 16)  # a regular file, rwxr-xr-x: Gradescope runs both scripts directly
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_autograder(rubric_path: Path, zip_path: Path) -> Path:
    """Write Gradescope's autograder zip for a rubric; returns its path.  The rubric is validated first."""
    from grader.grading.verdict_key import reference_files
    from grader.rubric.schema import load_rubric

    rubric = load_rubric(rubric_path)
    course = [rubric.path.resolve(), *(p.resolve() for p in reference_files(rubric.reference_path))]
    course += [f.path for f in rubric.handout.files if f.path not in course]  # the handout, in its layout
    if rubric.starter_path is not None and rubric.starter_path not in course:
        course.append(rubric.starter_path)
    base = Path(os.path.commonpath([p.parent for p in course]))
    project, package = _package_files()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(_executable("setup.sh"), SETUP_SH.format(requires=_pip_requires(rubric.requires)))
        z.writestr(_executable("run_autograder"), RUN_AUTOGRADER.format(rubric=rubric.path.resolve().relative_to(base).as_posix()))
        for p in course:
            z.write(p, f"assignment/{p.relative_to(base).as_posix()}")
        for name in ("pyproject.toml", "README.md"):
            if (project / name).is_file():
                z.write(project / name, f"dl-grader/{name}")
        for p in package:
            z.write(p, f"dl-grader/{p.relative_to(project).as_posix()}")
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, zip_path)
    return zip_path


def _names(root: Path) -> str:
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = meta.get("users") or []
        return ", ".join(str(u.get("name") or u.get("email") or "") for u in users if isinstance(u, dict)).strip(", ")
    except (OSError, ValueError, AttributeError):
        return ""  # the name only labels the result; grading goes on without it


def _failure(message: str) -> dict[str, Any]:
    return {"score": 0.0, "output": message, "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


UNSANDBOXED = ("Note for instructors: the student's code ran with the autograder's own rights ({why}): it could "
               "read the reference and the rubric and change these results.")


def autograder_launcher(root: Path) -> tuple[Any, str]:
    """The launcher for the student's code, and a note for the results where it is not sandboxed."""
    from grader.execution import launchers, sandbox
    from grader.execution.user_sandbox import UserLauncher, lock_down

    mode = os.environ.get("GRADER_SANDBOX", "auto")
    if mode == "off":
        return sandbox.PlainLauncher(), UNSANDBOXED.format(why="GRADER_SANDBOX=off")
    problem = sandbox.bwrap_problem()
    if problem is None:
        return launchers.choose_launcher(mode), ""
    if os.geteuid() == 0:
        # The reference, the rubric and dl-grader's source are under `source`; Python runs from the venv.
        lock_down([root / "source", root / "results", root / "submission_metadata.json"])
        return UserLauncher(), ""
    if mode == "required":
        raise GraderError(f"no OS sandbox: {problem}, and not root, so no user to run the student's code as")
    return sandbox.PlainLauncher(), UNSANDBOXED.format(why=f"{problem}; not root")


def run_autograder(root: Path, rubric_path: Path) -> int:
    """Grade the submission under `root` (Gradescope's layout) and write results/results.json.

    Always writes a results.json: a submission with nothing to grade scores 0 with the reason; a failure of
    the grader itself scores 0 with "a TA will look" and exits 1 (the traceback goes to stderr, which only
    instructors see).
    """
    from dataclasses import replace

    from grader.atomic import atomic_write
    from grader.classroom.score_files import gradescope
    from grader.execution.user_sandbox import UserLauncher, kill_user
    from grader.grading.submission import check_requirements, grade_submission
    from grader.rubric.schema import load_rubric
    from grader.sources.discover import read_folder

    out = root / "results" / "results.json"
    student = _names(root)
    status = 0
    launcher: Any = None
    try:
        rubric = load_rubric(rubric_path)
        check_requirements(rubric)  # setup.sh installs them; missing here is the instructor's to fix
        found = read_folder(root / "submission", rubric.assignment)
        if found.main is None:
            data = _failure("No .ipynb notebook or .py file was found in your submission; nothing was graded.")
        else:
            main = found.main
            launcher, note = autograder_launcher(root)
            result = grade_submission(rubric, main, launcher=launcher, helpers=found.helpers)
            result = replace(result, student=student or result.student)
            data = gradescope(result)
            graded = f"Graded {main.relative_to(root / 'submission').as_posix()}" + (f" for {student}" if student else "")
            data["output"] = "\n".join(part for part in (graded, note, data["output"]) if part)
    except Exception:  # noqa: BLE001 - Gradescope needs a results.json whatever happened
        traceback.print_exc()
        data = _failure("The autograder itself failed on this submission; a TA will look at it.")
        status = 1
    if isinstance(launcher, UserLauncher) and not kill_user(launcher.uid):
        data = _failure("The autograder could not stop every process of this submission; a TA will look at it.")
        status = 1
    atomic_write(out, json.dumps(data, indent=2))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.classroom.autograder", description="Gradescope's run_autograder")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")))
    parser.add_argument("--rubric", type=Path, required=True)
    args = parser.parse_args(argv)
    return run_autograder(args.root, args.rubric)


if __name__ == "__main__":
    sys.exit(main())
