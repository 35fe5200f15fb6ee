"""`grader validate`: is a rubric right, and is it strong enough?  The author's CI check, in stages.

1. `check_rubric`: what would otherwise fail only while grading (a name the rubric points at that the reference
   lacks or cannot call with the cases' arguments, a `forbid` entry that is no API, a question without the
   `answer` its kind reads) is a `RubricError` here, before anything runs;
2. `grade_known`: the reference, run as a submission through the student path, earns every point; a blank
   submission earns none; example submissions earn exactly what `expected.yaml` beside them says;
3. `mutation_analysis` (`grader.authoring.mutants`): wrong versions of the reference must each lose points, except
   those an allow-list justifies.

Each stage returns a small record; `Validation.exit_code` is 0 when all hold, 1 when the rubric is weak
(a survivor, a wrong score), and a `GraderError` (exit 2) is a rubric that cannot be validated at all.
"""
from __future__ import annotations

import importlib
import inspect
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from grader.authoring.mutants import AllowEntry, MutantResult, Runner, Verdict, credit_siblings, plan, unused_entries
from grader.authoring.mutants import allow as apply_allow_list
from grader.checks.base import question_seed
from grader.checks.forbid import PRESETS
from grader.errors import GraderError, RubricError
from grader.execution.sandbox import Launcher
from grader.grading.batch import Job
from grader.grading.executors import run_jobs
from grader.grading.submission import preflight
from grader.results import SubmissionResult
from grader.rubric.kinds import kind_spec, load
from grader.rubric.options import ForbidOptions, FunctionOptions, GradientOptions, PropertyOptions, TrainingOptions
from grader.rubric.schema import Question, Rubric
from grader.sources.load import SUFFIXES
from grader.sources.names import job_names

EXPECTED_FILE = "expected.yaml"
BLANK_SOURCE = '"""A blank submission: it defines nothing."""\n'


# -- records ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One fact a stage established; `ok` False makes the rubric weak (exit 1)."""

    ok: bool
    text: str


@dataclass(frozen=True)
class Stage:
    name: str
    findings: tuple[Finding, ...]
    seconds: float

    def __bool__(self) -> bool:
        return all(f.ok for f in self.findings)

    def serialize(self) -> dict[str, Any]:
        return {"name": self.name, "ok": bool(self), "seconds": round(self.seconds, 2),
                "findings": [asdict(f) for f in self.findings]}


@dataclass(frozen=True)
class QuestionMutation:
    """One question's mutation score: of its mutants, how many it killed, and what got through."""

    qid: str
    title: str
    kind: str
    results: tuple[MutantResult, ...]
    note: str = ""  # why it has no mutants

    def count(self, verdict: Verdict) -> int:
        return sum(r.verdict is verdict for r in self.results)

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if r.verdict is Verdict.SURVIVED]

    @property
    def score(self) -> float | None:
        """Killed share of the mutants that are wrong answers (equivalent and allowed ones left out, and those
        another question of the same function kills): 100% says every such mutant was seen by some case, not
        that every mistake is caught."""
        wrong = self.count(Verdict.KILLED) + self.count(Verdict.SURVIVED)
        return None if wrong == 0 else self.count(Verdict.KILLED) / wrong

    def __bool__(self) -> bool:
        return not self.survivors

    def serialize(self) -> dict[str, Any]:
        return {
            "qid": self.qid, "title": self.title, "kind": self.kind, "note": self.note, "score": self.score,
            "counts": {v.value: self.count(v) for v in Verdict}, "results": [r.serialize() for r in self.results],
        }


@dataclass(frozen=True)
class Mutation:
    questions: tuple[QuestionMutation, ...]
    mutants: int
    seconds: float
    jobs: int
    stale: tuple[AllowEntry, ...] = ()  # allow-list entries that justify no survivor

    def __bool__(self) -> bool:
        return all(self.questions)

    def serialize(self) -> dict[str, Any]:
        survivors = [{"question": r.question, "id": r.mutant.id, "digest": r.mutant.digest, "diff": r.mutant.diff(),
                      "message": r.message} for q in self.questions for r in q.survivors]
        return {"mutants": self.mutants, "seconds": round(self.seconds, 2), "jobs": self.jobs, "ok": bool(self),
                "survivors": survivors, "questions": [q.serialize() for q in self.questions],
                "stale_allow_entries": [e.model_dump() for e in self.stale]}


@dataclass(frozen=True)
class Validation:
    rubric: str
    stages: tuple[Stage, ...]
    mutation: Mutation | None
    seconds: float

    def __bool__(self) -> bool:
        return all(self.stages) and (self.mutation is None or bool(self.mutation))

    @property
    def exit_code(self) -> int:
        return 0 if self else 1

    def serialize(self) -> dict[str, Any]:
        return {"rubric": self.rubric, "ok": bool(self), "seconds": round(self.seconds, 2),
                "stages": [s.serialize() for s in self.stages],
                # `is not None`: a Mutation with survivors is falsy, and its survivors are what a script wants.
                "mutation": self.mutation.serialize() if self.mutation is not None else None}


# -- stage 1: the rubric against its reference, before anything runs ---------------------------------------------


def check_rubric(rubric: Rubric) -> list[RubricError]:
    """Every problem grading would meet only on a submission: names, signatures, forbid entries, missing keys.

    A reference that does not import stops at once (GraderError).  Only a rubric without such problems goes on
    to `preflight`, the check `grader grade` runs (names, then each kind's self-check of the reference), whose
    first failure raises.
    """
    reference = rubric.load_reference()
    problems = [
        RubricError(str(rubric.path), message, q.id, key)
        for q in rubric.questions
        for key, message in _question_problems(rubric, reference, q)
    ]
    if not problems:
        preflight(rubric)
    return problems


def _question_problems(rubric: Rubric, reference: ModuleType, q: Question) -> Iterator[tuple[str, str]]:
    kind, answer, opts = kind_spec(q.spec.kind), q.spec.answer, q.options
    if kind.reads_answer and not answer:
        yield "answer", f"a `{kind.name}` question needs `answer`, the name it reads in the submission"
    if q.spec.forbid and not answer:
        yield "forbid", "`forbid` checks the question's `answer`, and this question has none: it would be ignored"
    for key, entries in (("forbid", q.spec.forbid), ("apis", getattr(opts, "apis", None) or [])):
        for entry in entries:
            problem = forbid_entry_problem(entry)
            if problem:
                yield key, problem
    cases: list[dict[str, Any]] = []
    generator_name = getattr(opts, "cases", None)
    if isinstance(generator_name, str):
        problem, cases = _cases(rubric, reference, q, generator_name)
        if problem:
            yield "cases", problem
    if kind.problems is not None:  # the kind's own: the reference's functions it calls, and how
        yield from load(kind.problems)(reference, q, cases)


def _cases(rubric: Rubric, reference: ModuleType, q: Question, name: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The question's cases, or why its generator cannot give them (it takes one `torch.Generator`)."""
    from grader.checks.support.cases import generate_cases

    generator = getattr(reference, name, None)
    if not callable(generator):
        return _missing(reference, name, generator), []
    problem = _binds(generator, (torch.Generator(),), {})
    if problem:
        return f"`{name}` must take one argument, a torch.Generator: {problem}", []
    try:
        seed = question_seed(rubric, q, getattr(q.options, "seed", None))
        return None, generate_cases(generator, seed, f"{rubric.path.name}: {q.id}")
    except GraderError as exc:
        return str(exc).split(": ", 2)[-1], []


# Each kind's own problems (its entry's `problems`): (reference, question, cases) -> (key, message) problems.


def function_problems(reference: ModuleType, q: Question, cases: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    opts = q.options_as(FunctionOptions)
    name = opts.reference or q.spec.answer
    key = "reference" if opts.reference else "answer"
    if not name:
        return
    for i, case in enumerate(cases):
        problems = list(_callable_problems(reference, key, name, (), case, _shown(case), f"case {i + 1}"))
        yield from problems
        if problems:
            return  # one case says it; the others would repeat it


def gradient_problems(reference: ModuleType, q: Question, cases: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    opts = q.options_as(GradientOptions)
    wrt, upstream, at = opts.wrt, opts.upstream, opts.at
    for i, case in enumerate(cases[:1]):
        if upstream is not None and upstream not in case:
            yield "upstream", f"`{upstream}` is not an argument of the cases ({', '.join(case)})"
        if at is None and wrt not in case:
            yield "wrt", f"`{wrt}` is not an argument of the cases ({', '.join(case)}); name one, or give `at`"
        if at is not None:
            yield from _callable_problems(reference, "at", at, (), case, _shown(case), f"case {i + 1}")
        inputs = {k: v for k, v in case.items() if k != upstream} | {wrt: None}
        yield from _callable_problems(reference, "forward", opts.forward, (), inputs, _shown(inputs), f"case {i + 1}")


def property_problems(reference: ModuleType, q: Question, cases: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    predicate = q.options_as(PropertyOptions).predicate
    yield from _callable_problems(reference, "predicate", predicate, ({}, None), {}, "(inputs, answer)")


def training_problems(reference: ModuleType, q: Question, cases: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    opts = q.options_as(TrainingOptions)
    # The reference, graded as a submission, defines the student's names; their calls are fixed by the worker.
    for key, name, args in (("factory", opts.factory, ()), ("train", opts.train, (None,) * 5)):
        if name and hasattr(reference, name):
            yield from _callable_problems(reference, key, name, args, {}, "()" if not args else "(model, images, labels, epochs, seed)")


def forbid_problems(reference: ModuleType, q: Question, cases: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    if not q.options_as(ForbidOptions).function and not q.spec.answer:
        yield "function", "a `forbid` question needs `function` or `answer`, the function it reads"


def _callable_problems(
    reference: ModuleType, key: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], shown: str, where: str = ""
) -> Iterator[tuple[str, str]]:
    fn = getattr(reference, name, None)
    on = f" on {where}" if where else ""
    if not callable(fn):
        yield key, _missing(reference, name, fn)
        return
    problem = _binds(fn, args, kwargs)
    if problem:
        yield key, f"`{name}` cannot be called as {name}{shown}{on}: {problem}"


def _missing(reference: ModuleType, name: str, value: Any) -> str:
    if not hasattr(reference, name):
        return f"the reference {Path(str(reference.__file__)).name} has no {name!r}"
    return f"`{name}` in the reference is a {type(value).__name__}, not a function"


def _binds(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: only a call would tell
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    return None


def _shown(case: dict[str, Any]) -> str:
    return f"({', '.join(f'{k}=...' for k in case)})"


def forbid_entry_problem(entry: str) -> str | None:
    """None for a preset, a `.attr` ban or a dotted name that imports; else why the entry bans nothing."""
    entry = entry.strip()
    if entry in PRESETS:
        return None
    known = f"a preset ({', '.join(sorted(PRESETS))}), an attribute (`.backward`) or a dotted API name"
    if entry.startswith("."):
        return None if entry[1:].isidentifier() else f"`{entry}` is not {known}"
    parts = entry.split(".")
    if not all(p.isidentifier() for p in parts):
        return f"`{entry}` is not {known}"
    if not _resolves(parts):
        return f"`{entry}` names nothing importable (a typo?); a forbid entry is {known}"
    return None


def _resolves(parts: list[str]) -> bool:
    """`torch.nn.functional.conv1d`: the longest prefix that imports, then attributes for the rest."""
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        except Exception:  # noqa: BLE001 - a module that fails on import names nothing usable
            return False
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


# -- stage 2: submissions whose scores are known -----------------------------------------------------------------


class _Expected(BaseModel):
    """One example's expected points: `total` and any questions' points."""

    model_config = ConfigDict(extra="allow", frozen=True)

    total: float | None = None

    @property
    def questions(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in (self.model_extra or {}).items()}


@dataclass(frozen=True)
class Examples:
    folder: Path
    expected: dict[str, _Expected]  # file name -> expected points
    unlisted: tuple[str, ...] = ()  # submissions in the folder that expected.yaml does not score


def read_examples(folder: Path, rubric: Rubric) -> Examples:
    """`folder/expected.yaml`: `{file: {total: N, q1.1: p, ...}}`; errors name the file, the example and the key."""
    path = folder / EXPECTED_FILE
    if not path.is_file():
        raise GraderError(f"no {EXPECTED_FILE} in {folder}: it gives each example's expected points")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RubricError(str(path), f"cannot read it: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise RubricError(str(path), "expected {file: {total: N, q1.1: points, ...}, ...}")
    known = {q.id: q.spec.points for q in rubric.questions}
    expected = {}
    for name, points in raw.items():
        try:
            spec = _Expected.model_validate(points if points is not None else {})
            scores = spec.questions
        except (ValidationError, TypeError, ValueError) as exc:
            raise RubricError(str(path), f"points must be numbers: {exc}", str(name)) from exc
        if not (folder / str(name)).is_file():
            raise RubricError(str(path), f"no such file in {folder}", str(name))
        for qid, value in scores.items():
            if qid not in known:
                raise RubricError(str(path), f"no question {qid} in {rubric.path.name}", str(name), qid)
            if not 0 <= value <= known[qid]:
                raise RubricError(str(path), f"{value:g} is outside 0..{known[qid]:g}", str(name), qid)
        expected[str(name)] = spec
    unlisted = tuple(p.name for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES and p.name not in expected)
    return Examples(folder, expected, unlisted)


@dataclass(frozen=True)
class Known:
    """The stages of submissions whose scores are known, and the reference's time per question."""

    reference: Stage
    blank: Stage
    examples: Stage | None
    baseline: dict[str, float] = field(default_factory=dict)


def grade_known(
    rubric: Rubric, examples: Examples | None, *, launcher: Launcher | None = None, device: str = "cpu", jobs: int = 1
) -> Known:
    """Grade the reference, a blank submission and the examples, as `grader grade` grades a class."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grader-validate-") as scratch:
        blank = Path(scratch) / "blank.py"
        blank.write_text(BLANK_SOURCE, encoding="utf-8")
        paths = [rubric.reference_path, blank] + ([examples.folder / n for n in examples.expected] if examples else [])
        names = job_names(paths)
        jobs_ = [Job(str(p), n) for p, n in zip(paths, names)]
        by_path = {r.path: r for r in run_jobs(rubric, jobs_, workers=jobs, launcher=launcher, device=device)}
    seconds = time.perf_counter() - start
    results = [by_path[str(p)] for p in paths]
    reference = Stage("reference", tuple(_reference_findings(rubric, results[0])), results[0].execution_time)
    blank_stage = Stage("blank", tuple(_blank_findings(results[1])), results[1].execution_time)
    example_stage = None
    if examples is not None:
        findings = [_example_finding(name, spec, r) for (name, spec), r in zip(examples.expected.items(), results[2:])]
        findings += [Finding(True, f"{name}: not scored ({EXPECTED_FILE} gives no points for it)") for name in examples.unlisted]
        example_stage = Stage("examples", tuple(findings), seconds)
    baseline = {q.qid: q.duration for q in results[0].questions}
    return Known(reference, blank_stage, example_stage, baseline)


def _reference_findings(rubric: Rubric, result: SubmissionResult) -> Iterator[Finding]:
    # A TA's questions score 0 until scored, for the reference as for anyone.
    graded = {q.id for q in rubric.questions if not kind_spec(q.spec.kind).ta_graded}
    wanted = sum(q.spec.points for q in rubric.questions if q.id in graded)
    lost = [q for q in result.questions if q.qid in graded and q.score < q.max_score]
    for c in result.cell_failures:
        yield Finding(False, f"cell {c.index + 1} of the reference failed ({c.reason}): {c.message}")
    for q in lost:
        yield Finding(False, f"{q.qid}: {q.score:g}/{q.max_score:g}: {q.message}")
    got = sum(q.score for q in result.questions if q.qid in graded)
    yield Finding(not lost and not result.cell_failures, f"{got:g}/{wanted:g} points as a submission")


def _blank_findings(result: SubmissionResult) -> Iterator[Finding]:
    for q in result.questions:
        if q.score > 0:
            yield Finding(False, f"{q.qid}: {q.score:g} points for a blank submission: {q.message}")
    yield Finding(result.score == 0, f"{result.score:g}/{result.max_score:g} points for a submission with no answers")


def _example_finding(name: str, spec: _Expected, result: SubmissionResult) -> Finding:
    got = {q.qid: q.score for q in result.questions}
    wrong = [f"{qid} {got.get(qid, 0):g} (expected {p:g})" for qid, p in spec.questions.items() if abs(got.get(qid, 0) - p) > 1e-9]
    if spec.total is not None and abs(result.score - spec.total) > 1e-9:
        wrong.insert(0, f"total {result.score:g} (expected {spec.total:g})")
    text = f"{name}: {result.score:g}/{result.max_score:g}"
    return Finding(not wrong, text + (f": {'; '.join(wrong)}" if wrong else ", as expected"))


# -- stage 3: mutants ---------------------------------------------------------------------------------------------


def mutation_analysis(
    rubric: Rubric,
    allowed: Sequence[AllowEntry] = (),
    *,
    baseline: dict[str, float] | None = None,
    launcher: Launcher | None = None,
    device: str = "cpu",
    jobs: int = 1,
    on_done: Callable[[int, int], None] | None = None,
) -> Mutation:
    start = time.perf_counter()
    mutants = plan(rubric)
    runner = Runner(rubric, launcher=launcher, device=device, jobs=jobs, baseline=baseline)
    results = apply_allow_list(credit_siblings(runner.run(mutants.mutants, on_done)), allowed)
    questions = tuple(
        QuestionMutation(q.id, q.spec.title, q.spec.kind, tuple(r for r in results if r.question == q.id),
                         mutants.notes.get(q.id, "" if mutants.for_question(q.id) else "no mutants"))
        for q in rubric.questions
    )
    stale = tuple(unused_entries(results, allowed))
    return Mutation(questions, len(mutants.mutants), time.perf_counter() - start, jobs, stale)
