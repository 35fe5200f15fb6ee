"""The `deep-nn` assignment and what real course material brings with it (issue 19): the rubric's `handout:`
(a helper module, a package, a data file) laid beside every notebook, `requires:` checked before any student code
runs, folder submissions that keep their sub-folders, the kit carrying the handout, and a class-wide setup
problem said loudly instead of a class of silent zeros."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from grader.checks.support.compare import compare
from grader.cli.check import check
from grader.cli.grade import grade
from grader.cli.main import main
from grader.errors import GraderError, RubricError
from grader.grading.course_setup import setup_problems
from grader.grading.submission import grade_submission
from grader.grading.verdict_key import verdict_key
from grader.kit import build_kit, check_submission, read_kit, write_kit
from grader.results import CellFailure, QuestionResult, Status, SubmissionResult
from grader.rubric.schema import Rubric, load_rubric
from grader.sources.discover import discover

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "submissions" / "deep-nn"
RUBRIC = ROOT / "rubrics" / "deep-nn.yaml"
HANDOUT = ROOT / "rubrics" / "handouts" / "deep-nn"
FULL = {"q1.1": 2, "q1.2": 3, "q2.1": 2, "q3.1": 3, "q3.2": 3, "q4.1": 2, "q5.1": 1}

EXPECTED = [
    # submission, its score per question where it differs from full marks, total
    (EXAMPLES / "ana_correct.ipynb", {}, 16.0),  # imports the handout's module and package, reads its data file
    # no 1/m in the cost (0); db without keepdims (0), and so the activation backward built on it (0)
    (EXAMPLES / "ben_partial.py", {"q2.1": 0, "q3.1": 0, "q3.2": 0}, 8.0),
    # `from dnn_utils import *`; update_parameters returns nothing (0); the means over the wrong axis (0)
    (EXAMPLES / "cara_no_return.ipynb", {"q4.1": 0, "q5.1": 0}, 13.0),
    (ROOT / "reference" / "deep_nn.py", {}, 16.0),  # the reference, graded as a submission
]


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(RUBRIC)


@pytest.fixture(scope="module")
def graded(rubric: Rubric) -> dict[str, SubmissionResult]:
    return {path.name: grade_submission(rubric, path) for path, _, _ in EXPECTED}


def test_examples_folder_holds_what_the_tests_name() -> None:
    names = {p.name for p in EXAMPLES.iterdir()} - {"HANDOUT.md", "expected.yaml"}
    assert names == {p.name for p, _, _ in EXPECTED if p.parent == EXAMPLES}


@pytest.mark.parametrize("path, lost, total", EXPECTED, ids=[p.name for p, _, _ in EXPECTED])
def test_example_scores(graded: dict[str, SubmissionResult], path: Path, lost: dict[str, float], total: float) -> None:
    result = graded[path.name]
    assert result.cell_failures == ()
    assert {q.qid: q.score for q in result.questions} == {**FULL, **lost}, {q.qid: q.message for q in result.questions}
    assert result.score == total


def test_messages_speak_numpy_and_name_a_missing_return(graded: dict[str, SubmissionResult]) -> None:
    cara = {q.qid: q for q in graded["cara_no_return.ipynb"].questions}
    assert cara["q4.1"].message.endswith("`update_parameters` returned None: is a `return` missing?")
    assert "expected shape (3, 1), got shape (8,)" in cara["q5.1"].message
    ben = {q.qid: q for q in graded["ben_partial.py"].questions}
    assert ben["q3.1"].message.endswith(
        "expected shape (4, 1), got shape (4,); the values are right, but your shape differs in axes of size 1: "
        "a missing or extra `np.squeeze`/`np.expand_dims` (or `keepdims=True`)")
    assert compare(np.zeros(3), None).message == "expected an array of shape (3,), got None"  # type: ignore[union-attr]
    assert compare(torch.zeros(3), 1.5).message == "expected a tensor of shape (3,), got float 1.5"  # type: ignore[union-attr]


def test_the_handout_is_loaded_with_the_rubric(rubric: Rubric) -> None:
    assert sorted(f.name for f in rubric.handout.files) == [
        "data/tiny.csv", "deep_nn.ipynb", "dlai_tools/__init__.py", "dlai_tools/activations.py", "dnn_utils.py",
    ]
    assert rubric.requires == ("numpy",)
    assert rubric.starter_path == HANDOUT / "deep_nn.ipynb"


# -- flat notebooks (as an LMS delivers them), with and without the handout in the rubric ---------------------------


def _class_of_three(tmp_path: Path) -> Path:
    """Three notebooks of the class, notebook only, as an LMS download holds them."""
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(EXAMPLES / "ana_correct.ipynb", folder / "ana.ipynb")
    shutil.copy(EXAMPLES / "ana_correct.ipynb", folder / "ann.ipynb")
    shutil.copy(EXAMPLES / "cara_no_return.ipynb", folder / "cara.ipynb")
    return folder


def test_flat_notebooks_import_the_handout_and_get_every_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = grade(RUBRIC, [_class_of_three(tmp_path)], tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "course setup" not in err
    totals = {name: json.loads((tmp_path / "out" / name / "results.json").read_text())["score"] for name in ("ana", "ann", "cara")}
    assert totals == {"ana": 16.0, "ann": 16.0, "cara": 13.0}
    # grade also looks for similar code (a hint, never a score change): ann's notebook is a copy of ana's.
    pairs = json.loads((tmp_path / "out" / "similarity.json").read_text())["pairs"]
    assert [(p["a"], p["b"], p["score"]) for p in pairs] == [("ana", "ann", 1.0)]


def _without_handout(tmp_path: Path) -> Path:
    text = RUBRIC.read_text().replace("reference: ../reference/deep_nn.py", f"reference: {ROOT / 'reference' / 'deep_nn.py'}")
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("handout:", "starter:")))
    path = tmp_path / "no-handout.yaml"
    path.write_text(text)
    return path


def test_without_the_handout_the_setup_problem_is_loud(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = grade(_without_handout(tmp_path), [_class_of_three(tmp_path)], out)
    err = capsys.readouterr().err
    assert code == 1
    assert ("grader: needs a TA: course setup: 3 of 3 submissions fail with ModuleNotFoundError: No module named "
            "'dnn_utils'") in err
    assert "3 of 3 submissions fail with FileNotFoundError: data/tiny.csv not found" in err
    index = (out / "index.html").read_text()
    assert index.index("course setup") < index.index('id="questions"')
    assert "Nothing: every submission was read" not in index
    ana = json.loads((out / "ana" / "grading.json").read_text())
    q12 = next(q for q in ana["questions"] if q["qid"] == "q1.2")
    assert q12["message"].endswith(
        "NameError: name 'relu' is not defined. `relu` is not defined because cell 1 (`import numpy as np`) failed: "
        "ModuleNotFoundError: No module named 'dnn_utils'"
    )
    cara = json.loads((out / "cara" / "grading.json").read_text())
    q12 = next(q for q in cara["questions"] if q["qid"] == "q1.2")
    assert "(its `import *` would have defined it): ModuleNotFoundError: No module named 'dnn_utils'" in q12["message"]
    status = tmp_path / "status.txt"
    with status.open("w") as stream:
        from grader.cli.status import status as show_status

        show_status(out, stream)
    text = status.read_text()
    assert "needs a TA:            2" in text and "course setup: 3 of 3 submissions fail with ModuleNotFoundError" in text


def _result(student: str, failures: tuple[CellFailure, ...] = (), message: str = "") -> SubmissionResult:
    q = QuestionResult("q1.1", "t", "function", 0.0, 1.0, Status.ERROR if message else Status.PASSED, message, "public")
    return SubmissionResult(student, f"{student}.ipynb", "a", (q,), cell_failures=failures)


def test_a_setup_problem_needs_more_than_half_of_the_class_and_three_students() -> None:
    fail = (CellFailure(0, "error", "ModuleNotFoundError: No module named 'h5py'"),)
    two_of_three = [_result("a", fail), _result("b", fail), _result("c")]
    assert setup_problems(two_of_three) == ()
    three_of_five = [_result("a", fail), _result("b", fail), _result("c", fail), _result("d"), _result("e")]
    (problem,) = setup_problems(three_of_five)
    assert (problem.cause, problem.count, problem.total) == ("ModuleNotFoundError: No module named 'h5py'", 3, 5)
    assert "`requires:`" in problem.hint
    assert setup_problems([*three_of_five, _result("f")]) == ()  # 3 of 6 is not more than half
    name = "NameError: name 'sigmoid' is not defined"
    assert [p.cause for p in setup_problems([_result(s, message=f"failed: {name}") for s in "abc"])] == [name]


# -- the student's own files, and a file named like the course's ---------------------------------------------------


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def test_a_folder_keeps_its_package_and_a_course_file_is_never_replaced(tmp_path: Path) -> None:
    student = tmp_path / "class" / "dana"
    (student / "mystats").mkdir(parents=True)
    (student / "mystats" / "__init__.py").write_text("")
    (student / "mystats" / "means.py").write_text("def feature_means(X):\n    return X.mean(axis=1, keepdims=True)\n")
    # Her own dnn_utils.py (a broken relu_backward): grading uses the course's.
    (student / "dnn_utils.py").write_text("def relu_backward(dA, cache):\n    return dA\n")
    source = nbformat.read(EXAMPLES / "ana_correct.ipynb", as_version=4)
    cells = [c.source for c in source.cells if c.cell_type == "code"][:-1]
    _notebook(student / "hw.ipynb", *cells, 'from mystats.means import feature_means\n'
              'X_mean = feature_means(np.loadtxt("data/tiny.csv", delimiter=","))')
    found = discover([tmp_path / "class"])
    (entry,) = found.entries
    assert set(entry.names) == {"hw.ipynb", "mystats/__init__.py", "mystats/means.py", "dnn_utils.py"}
    out = tmp_path / "out"
    assert grade(RUBRIC, [tmp_path / "class"], out) == 0
    assert json.loads((out / "dana" / "results.json").read_text())["score"] == 16.0
    result = json.loads((out / "dana" / "grading.json").read_text())
    assert result["notes"] == [
        "your `dnn_utils.py` was not used: the course hands out a file of that name, and grading uses the course's"
    ]
    assert "`dnn_utils.py` was not used" in (out / "dana" / "report.md").read_text()


def test_the_handout_is_in_the_cache_key(tmp_path: Path) -> None:
    copy = tmp_path / "rubrics"
    shutil.copytree(ROOT / "rubrics", copy)
    (tmp_path / "reference").mkdir()
    shutil.copy(ROOT / "reference" / "deep_nn.py", tmp_path / "reference")
    submission = EXAMPLES / "ana_correct.ipynb"
    before = verdict_key(load_rubric(copy / "deep-nn.yaml"), submission)
    with (copy / "handouts" / "deep-nn" / "dnn_utils.py").open("a") as fh:
        fh.write("\n# a fix of the course's helper\n")
    assert verdict_key(load_rubric(copy / "deep-nn.yaml"), submission) != before


# -- requires: -----------------------------------------------------------------------------------------------------


def test_a_missing_requirement_stops_before_any_student_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rubric = tmp_path / "needs.yaml"
    rubric.write_text(_without_handout(tmp_path).read_text().replace(
        "requires: [numpy]", "requires: [numpy, h5py-not-on-any-machine, 'scikit-learn-nowhere>=1.3']"))
    marker = tmp_path / "student-code-ran"
    student = _notebook(tmp_path / "s.ipynb", f"open({str(marker)!r}, 'w').write('ran')")
    code = main(["grade", str(rubric), str(student), "--out", str(tmp_path / "out"), "--sandbox", "off"])
    err = capsys.readouterr().err
    assert code == 2
    assert ("the rubric requires h5py-not-on-any-machine, scikit-learn-nowhere>=1.3, which this environment lacks: "
            "pip install h5py-not-on-any-machine 'scikit-learn-nowhere>=1.3'") in err
    assert not marker.exists() and not (tmp_path / "out" / "s").exists()


def test_a_requirement_that_is_no_requirement_string_is_a_rubric_error(tmp_path: Path) -> None:
    rubric = tmp_path / "bad.yaml"
    rubric.write_text(_without_handout(tmp_path).read_text().replace("requires: [numpy]", "requires: ['numpy >= ']"))
    with pytest.raises(RubricError, match="requires.*not a requirement string"):
        load_rubric(rubric)


def test_a_handout_with_a_link_or_the_reference_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "handout"
    shutil.copytree(HANDOUT, folder)
    text = _without_handout(tmp_path).read_text() + "\nhandout: handout\n"
    rubric = tmp_path / "r.yaml"
    rubric.write_text(text)
    assert len(load_rubric(rubric).handout.files) == 5
    (folder / "secret").symlink_to("/etc/passwd")
    with pytest.raises(RubricError, match="handout: secret is a symbolic link"):
        load_rubric(rubric)
    (folder / "secret").unlink()
    shutil.copy(ROOT / "reference" / "deep_nn.py", folder / "deep_nn.py")
    rubric.write_text(text.replace(f"reference: {ROOT / 'reference' / 'deep_nn.py'}", "reference: handout/deep_nn.py"))
    with pytest.raises(RubricError, match="holds the reference"):
        load_rubric(rubric)


# -- the kit --------------------------------------------------------------------------------------------------------


def test_the_kit_carries_the_handout_and_its_requirements(rubric: Rubric, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep-nn.kit.zip"
    write_kit(build_kit(rubric), path, rubric.handout.files)
    kit = read_kit(path)
    assert kit.requires == ["numpy"] and "dlai_tools/activations.py" in kit.handout
    report = check_submission(kit, path, EXAMPLES / "ana_correct.ipynb")
    assert (report.result.score, report.exit_code) == (16.0, 0)
    # Grading's messages, case labels included (the kit stores them).
    ben = {q.qid: q for q in check_submission(kit, path, EXAMPLES / "ben_partial.py").result.questions}
    assert ben["q3.1"].message.startswith("on inputs [4 units, 5 inputs, 3 examples] dZ=<4x3>, cache=linear_forward(")
    # A folder, as grading reads it: the notebook and the student's own files.
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(EXAMPLES / "ana_correct.ipynb", folder / "hw.ipynb")
    assert check(folder, kit_path=path) == 0
    assert "public checks: 16/16 points pass" in capsys.readouterr().out
    needy = kit.model_copy(update={"requires": ["numpy", "h5py-not-on-any-machine"]})
    with pytest.raises(GraderError, match="this assignment requires h5py-not-on-any-machine, which this environment "
                                          "lacks: pip install h5py-not-on-any-machine"):
        check_submission(needy, path, EXAMPLES / "ana_correct.ipynb")


def test_a_dask_task_carries_the_handout(rubric: Rubric, tmp_path: Path) -> None:
    from grader.grading.cluster import bundle_rubric

    bundle = bundle_rubric(rubric)
    for name, data in bundle.files:  # as a Dask worker writes the bundle: the relative layout kept
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    there = load_rubric(tmp_path / bundle.rubric)
    assert there.handout.digest == rubric.handout.digest and len(there.handout.files) == 5
    assert there.starter_path is not None and there.starter_path.is_file()


def test_the_gradescope_autograder_ships_the_handout_and_installs_the_requirements(rubric: Rubric, tmp_path: Path) -> None:
    import zipfile

    from grader.classroom.autograder import build_autograder

    with zipfile.ZipFile(build_autograder(RUBRIC, tmp_path / "ag.zip")) as z:
        names = set(z.namelist())
        setup = z.read("setup.sh").decode()
    assert {f"assignment/rubrics/handouts/deep-nn/{f.name}" for f in rubric.handout.files} <= names
    assert setup.rstrip().endswith("/autograder/venv/bin/pip install numpy")


def test_a_kit_check_prints_the_students_traceback_as_python_does(rubric: Rubric, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep-nn.kit.zip"
    write_kit(build_kit(rubric), path, rubric.handout.files)
    student = tmp_path / "tb.py"
    student.write_text("import numpy as np\n\ndef linear_forward(A, W, b):\n    Z = np.dot(W, A) + undefined_thing\n"
                       "    return Z, (A, W, b)\n")
    assert check(student, kit_path=path, report=None) == 1
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("  your traceback:")
    assert [line.strip() for line in lines[at + 1:at + 5]] == [
        'File "<your file>", line 4, in linear_forward',
        "Z = np.dot(W, A) + undefined_thing",
        "^^^^^^^^^^^^^^^",
        "NameError: name 'undefined_thing' is not defined",
    ]


def test_the_kit_in_a_notebook_names_a_missing_requirement(rubric: Rubric, tmp_path: Path) -> None:
    from grader import kit as notebook_kit

    needy = build_kit(rubric).model_copy(update={"requires": ["numpy", "h5py-not-on-any-machine"]})
    path = tmp_path / "needy.kit.zip"
    write_kit(needy, path, rubric.handout.files)
    with pytest.warns(UserWarning, match="this assignment requires h5py-not-on-any-machine, which this environment "
                                         "lacks: pip install h5py-not-on-any-machine"):
        notebook_kit.load(path)


def test_a_student_file_left_out_of_the_working_folder_is_said(tmp_path: Path) -> None:
    from grader.execution.workdir import stage_workdir

    main = tmp_path / "hw.py"
    main.write_text("x = 1\n")
    (tmp_path / "utils.py").write_text("y = 2\n")
    folder = tmp_path / "work"
    folder.mkdir()
    staged = stage_workdir(folder, main, [("utils.py", str(tmp_path / "utils.py")), ("gone.py", str(tmp_path / "gone.py")),
                                          ("hw.py", str(tmp_path / "utils.py"))])
    assert (folder / "utils.py").read_text() == "y = 2\n" and (folder / "hw.py").read_text() == "x = 1\n"
    assert staged.skipped == ("gone.py", "hw.py")
    assert staged.notes == ("not copied beside your submission: `gone.py`, `hw.py` (a name that leaves the folder or "
                            "is taken, or not a readable file)",)


def test_checking_a_folder_of_several_notebooks_says_which_one(rubric: Rubric, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep-nn.kit.zip"
    write_kit(build_kit(rubric), path, rubric.handout.files)
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(EXAMPLES / "ana_correct.ipynb", folder / "deep-nn.ipynb")
    shutil.copy(EXAMPLES / "cara_no_return.ipynb", folder / "draft.ipynb")
    assert check(folder, kit_path=path) == 0  # the one named like the assignment
    assert ("checking deep-nn.ipynb (of 2 candidates: deep-nn.ipynb, draft.ipynb; give the file itself to check "
            "another)") in capsys.readouterr().err
