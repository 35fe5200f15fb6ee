"""Student kits: no solution inside, the same public points as grading, counterexamples for formulas, the
`grader check --kit` command, and the in-notebook check in a real kernel."""
from __future__ import annotations

import json
import math
import textwrap
import zipfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import yaml

from grader.checks.gradient import expected_gradient
from grader.checks.support.cases import call_reference, clone, generate_cases
from grader.cli.main import main
from grader.errors import GraderError
from grader.grading.submission import grade_submission
from grader.kit import KitFile, build_kit, check_submission, load, read_kit, write_kit
from grader.kit.hashing import canonical, matches, point_hash
from grader.results import QuestionResult
from grader.rubric.schema import Rubric, load_rubric
from tests.conftest import DATA, ROOT, first_per_assignment

ASSIGNMENTS = ["cnn-rnn", "backprop-optim", "resnet-adversarial"]
HIDDEN = DATA / "kit" / "cnn-rnn-hidden.yaml"  # cnn-rnn with a formula, a value, a gradient and a function hidden
MINI = DATA / "mini" / "rubric.yaml"
RUBRICS = {**{a: ROOT / "rubrics" / f"{a}.yaml" for a in ASSIGNMENTS}, "cnn-rnn-hidden": HIDDEN, "mini": MINI}
MAX_KIT_BYTES = 300 * 1024


@pytest.fixture(scope="session")
def kits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("kits")
    made = {}
    for name, rubric in RUBRICS.items():
        made[name] = folder / f"{name}.kit.zip"
        write_kit(build_kit(load_rubric(rubric)), made[name])
    return made


# -- what a kit holds -------------------------------------------------------------------------------------------


def _contents(path: Path) -> list[bytes]:
    """The file as it is and every member unpacked: a secret must show in neither."""
    with zipfile.ZipFile(path) as zf:
        return [path.read_bytes(), *(zf.read(name) for name in zf.namelist())]


def _strings(node: Any) -> list[str]:
    """Every string of the manifest, keys included."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (k, *_strings(v))]
    return []


def _manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("kit.json"))  # type: ignore[no-any-return]


def _secret_lines(rubric: Rubric) -> list[str]:
    """Lines of the reference's source long enough to mean something (not `)` or `return x`)."""
    lines = {line.strip() for line in rubric.reference_path.read_text().splitlines()}
    return sorted(line for line in lines if len(line.replace(" ", "")) >= 10)


def _rubric_texts(rubric: Rubric) -> list[str]:
    """What a rubric says beyond titles: expected formulas, reference names, a TA's grading guide."""
    raw = yaml.safe_load(rubric.path.read_text())
    # Names a kit must hold: public answers (`forward: conv1d_forward` is one too) and the formulas' symbols,
    # the domain a handout states (`expected: "m"` is the symbol m, which the kit names as part of the domain).
    allowed = {q.spec.answer for q in rubric.questions if q.spec.visibility == "public"}
    allowed |= {name for q in raw["questions"] for name in q.get("symbols", {})}
    texts = []
    for q in raw["questions"]:
        for key in ("expected", "reference", "cases", "predicate", "at", "guide", "forward"):
            value = q.get(key)
            if isinstance(value, str) and value not in allowed:
                texts.append(value)
    return texts


def _hidden_outputs(rubric: Rubric) -> list[bytes]:
    """The raw bytes of every expected output of a hidden question, in the dtypes a kit could store."""
    reference = rubric.load_reference()
    found: list[bytes] = []
    for q in rubric.questions:
        if q.spec.visibility != "hidden" or q.spec.kind not in ("function", "gradient"):
            continue
        opts: Any = q.options
        cases = generate_cases(getattr(reference, opts.cases), rubric.spec.seed if opts.seed is None else opts.seed, q.id)
        for case in cases:
            if q.spec.kind == "function":
                out = call_reference(getattr(reference, opts.reference or q.spec.answer), case, q.id)
            else:
                point = getattr(reference, opts.at)(**{k: clone(v) for k, v in case.items()}) if opts.at else case[opts.wrt]
                out = expected_gradient(getattr(reference, opts.forward), case, opts, point)
            for t in out if isinstance(out, (list, tuple)) else [out]:
                array = t.detach().numpy()
                found += [array.astype(np.float64).tobytes(), array.astype(np.float32).tobytes()]
    return found


@pytest.mark.parametrize("name", list(RUBRICS))
def test_a_kit_holds_no_solution_and_is_small(kits: dict[str, Path], name: str) -> None:
    rubric = load_rubric(RUBRICS[name])
    path = kits[name]
    assert path.stat().st_size < MAX_KIT_BYTES
    blobs = _contents(path)
    strings = [s.strip() for s in _strings(_manifest(path))]

    for line in _secret_lines(rubric):
        for form in (line.encode(), json.dumps(line)[1:-1].encode()):
            assert not any(form in blob for blob in blobs), f"reference line in the kit: {line}"
    for text in _rubric_texts(rubric):
        assert text.strip() not in strings, f"rubric text in the kit: {text}"
        if not text.isidentifier():  # formulas and prose anywhere; a name only where a name goes (`cube` in `cube_vjp`)
            assert not any(text.encode() in blob for blob in blobs), f"rubric text in the kit: {text}"
    for output in _hidden_outputs(rubric):
        assert not any(output in blob for blob in blobs), "a hidden question's expected output is in the kit"

    hidden = [q for q in rubric.questions if q.spec.visibility == "hidden"]
    kit = read_kit(path)
    assert [q.id for q in kit.questions] == [q.id for q in rubric.questions if q.spec.visibility == "public"]
    assert kit.hidden_points == sum(q.spec.points for q in hidden) and kit.hidden_questions == len(hidden)
    for q in hidden:
        assert q.id not in strings and q.spec.title not in strings
    assert kit.assignment == rubric.assignment and kit.format == "dl-grader-kit" and kit.version == 1


def test_every_hidden_kind_is_scanned() -> None:
    # The scan above is only as good as what it looks for: the hidden variant hides real expected outputs.
    assert len(_hidden_outputs(load_rubric(HIDDEN))) >= 20  # 6 gradients and 4 forward outputs, two dtypes each
    assert "floor((H + 2*P - D*(K - 1) - 1)/S) + 1" in _rubric_texts(load_rubric(HIDDEN))


def test_a_kit_is_the_same_bytes_every_time(tmp_path: Path, kits: dict[str, Path]) -> None:
    again = tmp_path / "again.kit.zip"
    write_kit(build_kit(load_rubric(RUBRICS["cnn-rnn"])), again)
    assert again.read_bytes() == kits["cnn-rnn"].read_bytes()
    assert read_kit(again) == read_kit(kits["cnn-rnn"])


# -- the same points as grading ---------------------------------------------------------------------------------

EXAMPLES = [
    (a, p.name) for a in ASSIGNMENTS for p in sorted((ROOT / "submissions" / a).iterdir()) if p.suffix in (".py", ".ipynb")
]


@pytest.mark.parametrize("assignment, name", first_per_assignment(EXAMPLES))
def test_kit_points_equal_public_grading(kits: dict[str, Path], assignment: str, name: str) -> None:
    kit = read_kit(kits[assignment])
    path = ROOT / "submissions" / assignment / name
    report = check_submission(kit, kits[assignment], path)
    checked = {q.id for q in kit.questions if q.checked}
    rubric = load_rubric(RUBRICS[assignment])
    # Grading only the questions the kit checks: the rest (property, manual) are "checked only when graded".
    graded = grade_submission(replace(rubric, questions=tuple(q for q in rubric.questions if q.id in checked)), path,
                              public_only=True)
    assert {q.qid: q.score for q in report.result.questions} == {q.qid: q.score for q in graded.questions}
    assert {u.qid for u in report.unchecked} == {q.id for q in kit.questions} - checked


# -- formulas -------------------------------------------------------------------------------------------------------

FORMULAS = [
    # (question, answer cell or code, passes)
    ("q1.1", 'conv_output_size = "floor((H - K)/S) + 1"', False),
    ("q1.1", 'conv_output_size = "(H + 2*P - D*K + D - 1)//S + 1"', True),  # another form, same formula
    ("q1.1", r"md:**Answer q1.1:** $\left\lfloor \frac{H + 2P - D(K-1) - 1}{S} \right\rfloor + 1$", True),
    ("q1.1", r"md:**Answer q1.1:** $\left\lfloor \frac{H + 2P - K}{S} \right\rfloor + 1$", False),
    ("q2.1", 'gated_state_dim = "2*m"', False),
    ("q4.1", r"md:Answer q4.1: $\ln K$", True),  # not exact: compared to ten significant digits
    ("q4.1", 'initial_loss = "log(K) / log(2)"', False),
    ("q4.2", 'initial_accuracy = "0.5/K + 1/(2*K)"', True),  # a float and an exact value agree
]


@pytest.fixture(scope="session")
def formula_results(kits: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], QuestionResult]:
    """Notebook i holds the i-th answer of each question of FORMULAS; each notebook is checked once."""
    folder = tmp_path_factory.mktemp("formulas")
    kit = read_kit(kits["cnn-rnn"])
    by_question: dict[str, list[str]] = {}
    for qid, cell, _ in FORMULAS:
        by_question.setdefault(qid, []).append(cell)
    results = {}
    for i in range(max(len(cells) for cells in by_question.values())):
        nb = nbformat.v4.new_notebook()
        answered = {qid: cells[i] for qid, cells in by_question.items() if i < len(cells)}
        for cell in answered.values():
            nb.cells.append(nbformat.v4.new_markdown_cell(cell[3:]) if cell.startswith("md:") else nbformat.v4.new_code_cell(cell))
        path = folder / f"formulas{i}.ipynb"
        nbformat.write(nb, path)
        for q in check_submission(kit, kits["cnn-rnn"], path).result.questions:
            if q.qid in answered:
                results[q.qid, answered[q.qid]] = q
    return results


@pytest.mark.parametrize("qid, cell, passes", FORMULAS)
def test_formula_answers(formula_results: dict[tuple[str, str], QuestionResult], qid: str, cell: str, passes: bool) -> None:
    result = formula_results[qid, cell]
    if passes:
        assert result.score == result.max_score and result.message.startswith("equal on "), result.message
        return
    assert result.score == 0 and result.message.endswith("not the expected value"), result.message
    counterexample = result.details["counterexample"]
    assert set(counterexample) == {"point", "yours"}  # the expected value stays out of the report
    where = ", ".join(f"{k}={v}" for k, v in counterexample["point"].items())
    assert result.message == f"{where}: yours {counterexample['yours']}, not the expected value"


def test_formula_counterexample_names_every_symbol_in_order(formula_results: dict[tuple[str, str], QuestionResult]) -> None:
    q = formula_results[FORMULAS[0][:2]]
    assert list(q.details["counterexample"]["point"]) == ["H", "K", "P", "S", "D"]
    assert "expected" not in q.details and "expected" not in q.details["counterexample"]


# -- grader check --kit -------------------------------------------------------------------------------------------


def test_check_exit_status_and_honest_summary(kits: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bob = ROOT / "submissions" / "cnn-rnn" / "bob_partial.py"
    # --no-report: no report.html written beside the shipped examples
    assert main(["check", str(bob), "--kit", str(kits["cnn-rnn"]), "--sandbox", "off", "--no-report"]) == 1
    out = capsys.readouterr().out
    assert "public checks: 14/30 points pass, 16 checked here do not" in out
    assert "All tests passed" not in out and "not the expected value" in out
    alice = ROOT / "submissions" / "cnn-rnn" / "alice_correct.ipynb"
    assert main(["check", str(alice), "--kit", str(kits["cnn-rnn"]), "--sandbox", "off", "--no-report"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("public checks: 30/30 points pass")


def test_check_says_what_only_grading_sees(kits: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = tmp_path / "me.py"
    sub.write_text("answer = 42\npair = (5, 2)\nflag = False\nratio = 0.25\ndef scale(x, k):\n    return x * k\n")
    assert main(["check", str(sub), "--kit", str(kits["mini"]), "--sandbox", "off", "--question", "q2.1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("public checks: 2/2 points pass")
    main(["check", str(sub), "--kit", str(kits["mini"]), "--sandbox", "off"])
    out = capsys.readouterr().out
    assert "public checks: 6/10 points pass, 3 checked here do not; 1 more point is graded only when you submit (1 on hidden inputs)" in out
    assert "q2.2" not in out


def test_resnet_kit_names_the_questions_it_leaves_to_grading(kits: dict[str, Path]) -> None:
    kit = read_kit(kits["resnet-adversarial"])
    report = check_submission(kit, kits["resnet-adversarial"], ROOT / "submissions" / "resnet-adversarial" / "alice_correct.ipynb",
                              question="q1.2")
    assert report.summary() == "public checks: 1/1 points pass"
    report = check_submission(kit, kits["resnet-adversarial"], ROOT / "submissions" / "resnet-adversarial" / "bob_names.py",
                              question="q3.2")
    assert not report.result.questions and not report.failed
    assert report.summary() == (
        "public checks: 0/3 points pass; 3 more points are graded only when you submit (3 by checks that need the reference: q3.2)"
    )


def test_check_json_is_results_json(kits: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bob = ROOT / "submissions" / "cnn-rnn" / "bob_partial.py"
    assert main(["check", str(bob), "--kit", str(kits["cnn-rnn"]), "--sandbox", "off", "--json", "--question", "q1.1", "--no-report"]) == 1
    data = json.loads(capsys.readouterr().out)
    (test,) = data["tests"]
    assert test["name"].startswith("q1.1 ") and test["score"] == 0 and test["max_score"] == 2 and test["status"] == "failed"
    assert "not the expected value" in test["output"]
    assert data["score"] == 0 and data["extra_data"]["kit"]["failed"] is True


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"not a zip", "not a dl-grader kit (not a readable zip file"),
        ({"other.json": "{}"}, "not a dl-grader kit (no kit.json inside)"),
        ({"kit.json": '{"format": "dl-grader-kit", "version": 99}'}, "kit format version 99; this grader reads version 1"),
        ({"kit.json": '{"format": "dl-grader-kit", "version": 1, "assignment": "x"}'}, "invalid kit: grader_version: Field required"),
        ({"kit.json": "[1, 2"}, "damaged kit"),
    ],
)
def test_a_bad_kit_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, fragment: str) -> None:
    path = tmp_path / "bad.kit.zip"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            for name, text in content.items():
                zf.writestr(name, text)
    sub = tmp_path / "me.py"
    sub.write_text("x = 1\n")
    assert main(["check", str(sub), "--kit", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grader: error:") and fragment in lines[0], lines


def test_a_damaged_array_is_caught_at_load(kits: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.kit.zip"
    with zipfile.ZipFile(kits["cnn-rnn"]) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name)[:-8] if name == "arrays/0.bin" else src.read(name))
    with pytest.raises(GraderError, match="damaged kit: q1.3"):
        read_kit(path)


def test_unknown_question_and_kit_verb(kits: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = tmp_path / "me.py"
    sub.write_text("x = 1\n")
    assert main(["check", str(sub), "--kit", str(kits["mini"]), "--question", "q2.2"]) == 2
    assert "the kit has no public question q2.2" in capsys.readouterr().err
    out = tmp_path / "made" / "mini.kit.zip"
    assert main(["kit", str(MINI), "--out", str(out)]) == 0
    assert "1 hidden questions left out" in capsys.readouterr().out
    assert out.is_file() and isinstance(read_kit(out), KitFile)


# -- in the notebook --------------------------------------------------------------------------------------------

STUDENT_CODE = '''
import torch

def conv1d_forward(x, W, stride):
    F, C, K = W.shape
    return torch.einsum("crk,fck->fr", x.unfold(1, K, stride), W)

conv_output_size = "floor((H - K)/S) + 1"
'''


def test_check_in_process_uses_the_namespace(kits: dict[str, Path]) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(STUDENT_CODE), "<cell 1>", "exec"), namespace)  # noqa: S102 - a notebook cell, run
    ok = load(kits["cnn-rnn"])
    report = ok.check("q1.3", namespace)
    assert report and report.summary() == "public checks: 3/3 points pass"
    assert "<table" in report._repr_html_() and "q1.3 conv1d forward" in str(report)
    wrong = ok.check("q1.1", namespace)
    assert not wrong and "not the expected value" in str(wrong)
    missing = ok.check("q2.2", namespace)
    assert "`gated_rnn_forward` is not defined" in str(missing)
    assert namespace["conv_output_size"] == "floor((H - K)/S) + 1"  # nothing of the student's was changed


def test_html_escapes_student_text(kits: dict[str, Path]) -> None:
    def conv1d_forward(x: Any, W: Any, stride: int) -> None:
        raise ValueError("<script>alert(1)</script>")

    html = load(kits["cnn-rnn"]).check("q1.3", {"conv1d_forward": conv1d_forward})._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_check_in_a_real_kernel(kits: dict[str, Path], tmp_path: Path) -> None:
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    path = tmp_path / "student.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(textwrap.dedent(STUDENT_CODE)),
        nbformat.v4.new_markdown_cell(r"**Answer q4.2:** $\frac{1}{K}$"),
        nbformat.v4.new_code_cell(f"from grader import kit\nok = kit.load({str(kits['cnn-rnn'])!r}, notebook={str(path)!r})\n"
                                  "ok.check('q1.2');  # warm-up: first imports"),
        nbformat.v4.new_code_cell("report = ok.check('q1.3')\nreport"),
        nbformat.v4.new_code_cell("print(ok.check('q1.1'))\nprint(ok.check('q4.2'))"),
        nbformat.v4.new_code_cell("ok.check_all()"),
    ]
    nbformat.write(nb, path)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    shown = nb.cells[3].outputs[0]["data"]
    assert "text/html" in shown and "q1.3 conv1d forward" in shown["text/html"] and "public checks: 3/3 points pass" in shown["text/plain"]
    printed = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "H=1, K=1, P=1, S=1, D=1: yours 1, not the expected value" in printed
    assert "q4.2 accuracy at initialisation  ok" in printed  # read from the notebook's Markdown cell
    summary = nb.cells[5].outputs[0]["data"]["text/plain"]
    assert "public checks: 4/30 points pass, 26 checked here do not" in summary


# -- formula hashing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expected, yours, same",
    [
        (Fraction(3, 10), 0.1 + 0.2, True),  # a float answer equal to an exact value up to rounding
        (Fraction(1, 2), 0.5000001, False),
        (5, 5, True),
        (5, 6, False),
        (2.0, 2, True),  # log(4)/log(2) evaluates to a float; the exact 2 is the same value
        (math.log(7), math.log(7) * (1 + 1e-15), True),  # one ulp off, across a rounding boundary or not
        (math.log(7), math.log(7) * (1 + 1e-7), False),
        (0.0, -0.0, True),
    ],
)
def test_hashed_values_match_as_the_formula_check_compares(expected: Any, yours: Any, same: bool) -> None:
    stored = point_hash("salt", (1, 2), canonical(expected))
    assert matches("salt", (1, 2), yours, stored) is same
    assert not matches("other salt", (1, 2), expected, stored) and not matches("salt", (2, 1), expected, stored)


def test_a_kernel_that_names_no_notebook_says_how_to_give_it_and_unknown_ids_are_one_line(
    kits: dict[str, Path], tmp_path: Path
) -> None:
    """nbclient (like classic Notebook without a server's session name, or Colab) sets no `__session__`."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    path = tmp_path / "student.ipynb"
    kit = str(kits["cnn-rnn"])
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(r"**Answer q4.2:** $\frac{1}{K}$"),
        nbformat.v4.new_code_cell("import os\nos.environ.pop('JPY_SESSION_NAME', None)\n"
                                  f"from grader import kit\nprint('__session__' in globals())\n"
                                  f"print(kit.load({kit!r}).check('q4.2'))"),
        nbformat.v4.new_code_cell(f"print(kit.load({kit!r}, notebook={str(path)!r}).check('q4.2'))"),
        nbformat.v4.new_code_cell(f"kit.load({kit!r}).check('q9.9')"),
    ]
    nbformat.write(nb, path)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    unnamed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert unnamed.startswith("False\n")  # no `__session__`: the file is not known
    assert 'pass `notebook="my.ipynb"` to `kit.load` so that Answer cells can be read' in unnamed
    assert "there is no `Answer" not in unnamed
    named = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "q4.2 accuracy at initialisation  ok" in named  # read from the Markdown cell
    (unknown,) = nb.cells[3].outputs
    assert unknown["output_type"] == "execute_result"
    assert unknown["data"]["text/plain"] == (
        "the kit has no public question 'q9.9'; it has q1.1, q1.2, q1.3, q1.4, q1.5, q2.1, q2.2, q2.3, q3.1, q3.2, q3.3, "
        "q4.1, q4.2"
    )


def test_a_kit_check_shows_the_failing_inputs_values_or_how_to_load_them(kits: dict[str, Path], tmp_path: Path) -> None:
    import contextlib
    import io


    ok = load(kits["cnn-rnn"])
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(STUDENT_CODE).replace("return torch.einsum", "return 2 * torch.einsum"),  # noqa: S102
                 "<cell 1>", "exec"), namespace)
    (q,) = ok.check("q1.3", namespace).result.questions
    shown = q.details["reproduce"]
    assert shown["original"] == "x=<2x10>, W=<3x2x3>, stride=1" and not shown["shrunk"]
    assert shown["inputs"].startswith("x = torch.tensor([[") and "\nstride = 1" in shown["inputs"]  # values, not shapes
    assert shown["snippet"].endswith("    return conv1d_forward(x, W, stride)\n\nprint(_reproduce_conv1d_forward())")

    import numpy as np

    def max_pool_forward(x: Any, pool_param: Any) -> Any:  # the pooled shape, all zeros
        ph, s = pool_param["pool_height"], pool_param["stride"]
        n, c, h, w = x.shape
        return np.zeros((n, c, (h - ph) // s + 1, (w - pool_param["pool_width"]) // s + 1)), None

    write_kit(build_kit(load_rubric(ROOT / "rubrics" / "layers.yaml")), tmp_path / "layers.kit.zip")
    layers = load(tmp_path / "layers.kit.zip")
    (big,) = layers.check("q4.1", {"max_pool_forward": max_pool_forward}).result.questions
    held = big.details["reproduce"]
    assert held["inputs"].startswith(big.details["case"]) and "too large to show here" in held["inputs"]
    n = int(held["snippet"].split(".inputs('q4.1', ")[1].split(")")[0])
    assert list(layers.inputs("q4.1", n)) == ["x", "pool_param"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(held["snippet"], {"max_pool_forward": max_pool_forward})  # noqa: S102 - the kit's own snippet
    assert printed.getvalue().startswith("(array([[[[0.")
