"""Registry of check kinds: one `KindSpec` per kind, the one place that says what a kind is.

An entry names what every stage needs of a kind: its rubric keys (loading a rubric), its check (grading), its
Details record (reports, `grader show`), its kit record, builder and check (student kits), and plain facts read
before grading (which keys name the reference's functions, what mutation analysis mutates, whether a TA scores
it).  Code is named as "module:attr" and imported on first use, so that loading a rubric pays only for the kinds
it uses (and no torch), showing a stored result imports neither torch nor SymPy, and this table, which the
rubric stage reads, imports nothing above it.

A new kind is one module and one entry (docs/adding-a-kind.md); a plugin or a test adds one with
`register_kind`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from grader.checks.base import Check
    from grader.explain import DetailsReader
    from grader.rubric.options import Options

Mutated = Literal["function", "value", "formula"]


@dataclass(frozen=True)
class KindSpec:
    """One check kind.  A `str` naming code is "module:attr", imported only when that part is used (`load`)."""

    name: str
    options: str  # its rubric keys: an `Options` model (grader.rubric.options), cheap to import (no torch)
    check: str  # its check class (grader.checks.base.Check), made with no arguments; may import torch
    details: str  # its Details record (grader.explain.Details): its module imports neither torch nor SymPy
    # -- what the rubric names, checked before anything runs (`preflight`, `grader validate`)
    reads_answer: bool = False  # the check reads the question's `answer` in the submission
    reference_keys: tuple[str, ...] = ()  # option keys whose value names an attribute of the reference module
    # Without a `reference` key (nor a literal `expected`), the reference's attribute named `answer` is read.
    answer_in_reference: bool = False
    problems: str | None = None  # "module:function" (reference, question, cases) -> its (key, message) problems
    # -- hidden questions (grader.authoring.hidden)
    seeded_cases: bool = False  # its `cases` generator draws the inputs from the question's seed
    reference_output: str | None = None  # "module:function" (reference, question, case, where) -> expected output
    # -- mutation analysis (grader.authoring.mutants): the reference function named `answer` (and the helpers it
    # calls), the reference's top-level value named `answer`, or the `expected` formula; None: `not_mutated` says why
    mutate: Mutated | None = None
    not_mutated: str = ""
    # -- student kits (grader.kit)
    kit_record: str | None = None  # its record in a kit (grader.kit.schema.CheckRecord); None: kits do not check it
    kit_build: str | None = None  # "module:function" (grader.kit.build.KitSource) -> its kit record
    kit_check: str | None = None  # "module:function" (CheckContext) -> Outcome; None: the grading's own check
    kit_unchecked: str = ""  # why a kit does not check it, where `kit_record` is None
    # -- the rest
    ta_graded: bool = False  # a TA scores it: 0 until then, and a low score is a judgement, not a failure
    uses_gpu: bool = False  # its check runs on the GPU when grading asks for one (cluster workers need one)


_KINDS: dict[str, KindSpec] = {spec.name: spec for spec in (
    KindSpec(
        "formula", "grader.rubric.options:FormulaOptions", "grader.checks.formula:FormulaCheck",
        "grader.checks.details.formula:FormulaDetails", mutate="formula",
        kit_record="grader.kit.schema:FormulaData", kit_build="grader.kit.build:build_formula",
        kit_check="grader.kit.checks:check_formula",
    ),
    KindSpec(
        "value", "grader.rubric.options:ValueOptions", "grader.checks.value:ValueCheck",
        "grader.checks.value:ValueDetails", reads_answer=True, reference_keys=("reference",),
        answer_in_reference=True, mutate="value",
        kit_record="grader.kit.schema:ValueData", kit_build="grader.kit.build:build_value",
    ),
    KindSpec(
        "function", "grader.rubric.options:FunctionOptions", "grader.checks.function:FunctionCheck",
        "grader.checks.details.function:FunctionDetails", reads_answer=True, seeded_cases=True, mutate="function",
        reference_keys=("reference", "cases"), answer_in_reference=True,
        problems="grader.authoring.validate:function_problems",
        reference_output="grader.checks.function:reference_output",
        kit_record="grader.kit.schema:FunctionData", kit_build="grader.kit.build:build_function",
        kit_check="grader.kit.checks:check_function",
    ),
    KindSpec(
        "gradient", "grader.rubric.options:GradientOptions", "grader.checks.gradient:GradientCheck",
        "grader.checks.details.gradient:GradientDetails", reads_answer=True, seeded_cases=True, mutate="function",
        reference_keys=("forward", "at", "cases"), problems="grader.authoring.validate:gradient_problems",
        reference_output="grader.checks.gradient:reference_output",
        kit_record="grader.kit.schema:GradientData", kit_build="grader.kit.build:build_gradient",
        kit_check="grader.kit.checks:check_gradient",
    ),
    KindSpec(
        "forbid", "grader.rubric.options:ForbidOptions", "grader.checks.forbid:ForbidCheck",
        "grader.checks.forbid:ForbidDetails", problems="grader.authoring.validate:forbid_problems",
        not_mutated="not mutated: a static check of the submission's source",
        kit_record="grader.kit.schema:ForbidData", kit_build="grader.kit.build:build_forbid",
    ),
    KindSpec(
        "training", "grader.rubric.options:TrainingOptions", "grader.checks.training:TrainingCheck",
        "grader.checks.details.training:TrainingDetails", problems="grader.authoring.validate:training_problems",
        not_mutated="not mutated: a training question scores a seeded run's accuracy, not the code",
        kit_record="grader.kit.schema:TrainingData", kit_build="grader.kit.build:build_training", uses_gpu=True,
    ),
    KindSpec(
        "property", "grader.rubric.options:PropertyOptions", "grader.checks.property:PropertyCheck",
        "grader.checks.details.property:PropertyDetails", reads_answer=True, seeded_cases=True, mutate="function",
        reference_keys=("predicate", "cases"), problems="grader.authoring.validate:property_problems",
        kit_unchecked="checked only when graded: many answers are right, and the check that decides needs the "
        "reference",
    ),
    KindSpec(
        "manual", "grader.rubric.options:ManualOptions", "grader.checks.manual:ManualCheck",
        "grader.checks.manual:ManualDetails", not_mutated="not mutated: graded by a TA",
        kit_unchecked="graded by a TA", ta_graded=True,
    ),
)}

BUILT_IN: tuple[str, ...] = tuple(_KINDS)  # the kinds this grader ships, in the table's order


def register_kind(spec: KindSpec, *, replace: bool = False) -> None:
    """Add a kind (a plugin's, a test's); ValueError where one of that name exists and `replace` is not set."""
    if spec.name in _KINDS and not replace:
        raise ValueError(f"check kind '{spec.name}' is registered already (by {_KINDS[spec.name].check})")
    _KINDS[spec.name] = spec


def unregister_kind(name: str) -> None:
    """Remove a kind `register_kind` added; the built-in ones stay."""
    if name in BUILT_IN:
        raise ValueError(f"check kind '{name}' is built in")
    _KINDS.pop(name, None)


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)


def find_kind(name: str) -> KindSpec | None:
    """The kind's entry, or None for a kind this grader does not know (a stored result of a removed kind)."""
    return _KINDS.get(name)


def kind_spec(name: str) -> KindSpec:
    """The kind's entry; KeyError (naming the known kinds) for an unknown one."""
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown check kind '{name}' (known: {', '.join(sorted(_KINDS))})") from None


def load(target: str) -> Any:
    """The object a "module:attr" entry names, its module imported on first use."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def options_class(kind: str) -> type[Options]:
    """The Options model of `kind`; KeyError (naming the known kinds) for an unknown one."""
    return load(kind_spec(kind).options)  # type: ignore[no-any-return]


def details_class(kind: str) -> DetailsReader | None:
    """The Details class of `kind` (with `from_dict`), or None for a kind this grader does not know (a stored
    result of a kind since removed: its message, traceback and forbid violations are still shown)."""
    spec = find_kind(kind)
    return None if spec is None else load(spec.details)


def get_kind(name: str) -> Check:
    """A check of kind `name`; KeyError (naming the known kinds) for an unknown one."""
    return load(kind_spec(name).check)()  # type: ignore[no-any-return]


__all__ = [
    "BUILT_IN", "KindSpec", "Mutated", "details_class", "find_kind", "get_kind", "kind_names", "kind_spec", "load",
    "options_class", "register_kind", "unregister_kind",
]
