"""Hidden stays hidden: a hidden question's test data, and where it would reach a student.

A hidden question's cases come from a seed stream of its own (`grader.checks.base.question_seed`), yet a
generator that ignores its seed (a fixed grid of inputs), or a reference that gives two questions the same
output, still makes a public question's data that of a hidden one.  A public question's report shows the
inputs of its first failing case (and the reference's output on it), and the student's kit holds every input and
output of the public questions: so `grader kit` refuses a kit holding bytes of a hidden question's inputs or
outputs (`kit_leaks`), and `grader validate` warns when a public question's data is a hidden one's
(`shared_with_hidden`).

Data are compared as the raw bytes of their arrays (tensors, NumPy arrays) of at least MIN_BYTES: a hidden
array found anywhere inside a public one (a slice of it) counts; scalars and arrays of one repeated value
(`k=2`, a zero bias), which many questions share by chance and which hide nothing, do not.
"""
from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from grader.rubric.kinds import kind_spec, load
from grader.rubric.schema import Question, Rubric

MIN_BYTES = 32  # four float64 numbers: less than that is too likely shared by chance to mean a leak


@dataclass(frozen=True)
class QuestionData:
    """The raw bytes of the arrays of one question's inputs and of the reference's outputs on them."""

    qid: str
    arrays: tuple[bytes, ...]


@dataclass(frozen=True)
class Leak:
    """A hidden question whose data is in a public one's (the kit's copy of it, or what its report may show)."""

    hidden: str
    public: str
    shared: int  # arrays of the hidden question found in the public one's data

    def describe(self) -> str:
        return (f"{self.public} (public) holds {self.shared} test input{'s' * (self.shared != 1)} or output"
                f"{'s' * (self.shared != 1)} of {self.hidden} (hidden)")


def question_data(rubric: Rubric, q: Question, reference: ModuleType) -> QuestionData:
    """The data of a question whose inputs are drawn from its seed (`function`, `gradient`, `property`), as grading
    generates it; none for other kinds."""
    if not kind_spec(q.spec.kind).seeded_cases:
        return QuestionData(q.id, ())
    values = list(_cases_and_outputs(rubric, q, reference))
    return QuestionData(q.id, tuple(b for v in values for b in _array_bytes(v) if len(b) >= MIN_BYTES))


def _cases_and_outputs(rubric: Rubric, q: Question, reference: ModuleType) -> Iterator[Any]:
    """Every input of the question's cases and, where its kind computes one, the reference's output on each."""
    from grader.checks.base import question_seed
    from grader.checks.support.cases import generate_cases

    opts: Any = q.options
    where = f"{rubric.path.name}: {q.id}"
    hook = kind_spec(q.spec.kind).reference_output
    output = load(hook) if hook is not None else None
    cases = generate_cases(getattr(reference, opts.cases), question_seed(rubric, q, opts.seed), where)
    for case in cases:
        yield from case.values()
        if output is not None:
            yield output(reference, q, case, where)


def _array_bytes(value: Any) -> Iterator[bytes]:
    """The raw bytes of every array in a value: tensors, NumPy arrays, and the codec's encoded arrays."""
    import numpy as np
    import torch

    from grader.checks.support.cases import OutputOf

    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            if item.layout == torch.strided and not item.is_complex():
                stack.append(item.detach().cpu().contiguous().numpy())
        elif isinstance(item, np.ndarray):
            if item.dtype.kind in "biuf" and item.size and not (item == item.flat[0]).all():  # zeros, ones: no secret, and shared by chance
                yield np.ascontiguousarray(item).tobytes()
        elif isinstance(item, dict):
            payload = item.get("$tensor", item.get("$ndarray"))
            if isinstance(payload, dict) and isinstance(payload.get("data"), str):
                yield base64.b64decode(payload["data"])
            else:
                stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, OutputOf):  # a chained call's arguments
            stack.extend([item.args, item.kwargs])


def _leaks(public: list[QuestionData], hidden: list[QuestionData]) -> list[Leak]:
    found = []
    for secret in hidden:
        for shown in public:
            shared = sum(any(needle in hay for hay in shown.arrays) for needle in secret.arrays)
            if shared:
                found.append(Leak(secret.qid, shown.qid, shared))
    return found


def hidden_data(rubric: Rubric, reference: ModuleType) -> list[QuestionData]:
    return [question_data(rubric, q, reference) for q in rubric.questions if q.spec.visibility == "hidden"]


def shared_with_hidden(rubric: Rubric) -> list[Leak]:
    """Public questions whose inputs or outputs (which their reports may show) are a hidden question's."""
    if not any(q.spec.visibility == "hidden" for q in rubric.questions):
        return []
    reference = rubric.load_reference()
    public = [question_data(rubric, q, reference) for q in rubric.questions if q.spec.visibility != "hidden"]
    return _leaks(public, hidden_data(rubric, reference))


def kit_leaks(rubric: Rubric, kit_questions: list[tuple[str, Any]]) -> list[Leak]:
    """Hidden questions whose inputs or outputs are in a kit: `kit_questions` is each public question's id and
    its kit data as plain JSON (tensors in the worker codec's encoding)."""
    if not any(q.spec.visibility == "hidden" for q in rubric.questions):
        return []
    public = [QuestionData(qid, tuple(b for b in _array_bytes(data) if b)) for qid, data in kit_questions]
    return _leaks(public, hidden_data(rubric, rubric.load_reference()))
