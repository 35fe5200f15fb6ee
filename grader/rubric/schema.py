"""The rubric schema, in one place.

A rubric is YAML: assignment-wide settings plus a list of questions.  Keys common to every question are
validated here; the keys of a check kind are validated by that kind's `Options` model (see `grader.checks`).
Every error names the rubric file, the question and the key at fault.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grader.errors import GraderError, RubricError
from grader.rubric.handout import Handout, HandoutError, load_handout
from grader.rubric.kinds import options_class

_Model = TypeVar("_Model", bound=BaseModel)

class Limits(BaseModel):
    """Resource limits for one submission's worker; the defaults suit a laptop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell_timeout: float = Field(60.0, gt=0, description="CPU seconds one code cell may use")
    call_timeout: float = Field(30.0, gt=0, description="CPU seconds one call of a student function may use")
    backstop: float = Field(
        4.0,
        ge=1.0,
        description="the wall-clock backstop of a cell or a call (for code that waits rather than computes), "
        "as a multiple of its CPU seconds",
    )
    memory_mb: int = Field(4096, gt=0, description="private memory of each worker process (RLIMIT_DATA)")
    total_memory_mb: int | None = Field(
        None,
        gt=0,
        description="memory of the worker and all its processes together, its tmpfs files included (a cgroup's "
        "memory limit); default twice memory_mb",
    )
    cpu_seconds: int = Field(600, gt=0, description="CPU time of the whole worker")
    wall_seconds: float = Field(900.0, gt=0, description="wall time of the whole submission")
    file_size_mb: int = Field(64, gt=0, description="largest file the worker may write")
    disk_mb: int = Field(
        256,
        gt=0,
        description="free space of each of /home/student and /tmp in the sandbox (tmpfs: it counts as memory)",
    )
    open_files: int = Field(256, gt=0)
    processes: int = Field(
        512, gt=0, description="processes and threads of the worker together (RLIMIT_NPROC, and a cgroup's pids.max)"
    )

    @property
    def total_memory(self) -> int:
        """`total_memory_mb`, or its default, in MB."""
        return self.total_memory_mb if self.total_memory_mb is not None else 2 * self.memory_mb


class QuestionSpec(BaseModel):
    """Keys every question has; anything else belongs to its check kind."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=r"^q\d+(\.\d+)*$")
    title: str
    points: float = Field(ge=0)
    kind: str
    answer: str | None = Field(None, description="the top-level name the student defines")
    visibility: Literal["public", "hidden"] = "public"
    timeout: float | None = Field(None, gt=0, description="overrides limits.call_timeout for this question")
    forbid: list[str] = Field(
        default_factory=list,
        description="APIs the answer (and every function of the submission it calls) must not use; "
        "a violation scores 0 for the question.  'autograd' names the handouts' preset.",
    )

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RubricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    assignment: str
    title: str = ""
    reference: str = Field(description="path of the reference module, relative to the rubric file")
    total: float | None = Field(None, description="if given, the points must add up to it")
    seed: int = 0
    handout: str | None = Field(
        None,
        description="folder (relative to the rubric) of what the course hands out beside the notebook: modules, "
        "packages, small data files; laid into every worker's working folder, and into the student kit",
    )
    starter: str | None = Field(
        None,
        description="the handout's starter notebook (relative to the rubric); `grader validate` grades it and "
        "fails when its imports do not run",
    )
    requires: list[str] = Field(
        default_factory=list,
        description="requirement strings of the packages students' code imports beyond the grader's own "
        "(`h5py`, `scikit-learn>=1.3`); checked before any student code runs",
    )
    limits: Limits = Limits()
    questions: list[QuestionSpec]

    @field_validator("requires")
    @classmethod
    def _requirements(cls, requires: list[str]) -> list[str]:
        from grader.rubric.handout import parse_requirement

        for text in requires:
            problem = parse_requirement(text)
            if problem:
                raise ValueError(f"{text!r} is not a requirement string like 'h5py' or 'scikit-learn>=1.3': {problem}")
        return requires

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[QuestionSpec]) -> list[QuestionSpec]:
        seen: set[str] = set()
        for q in questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id} appears twice")
            seen.add(q.id)
        return questions


@dataclass(frozen=True)
class Question:
    """A validated question: the common keys plus its kind's validated options."""

    spec: QuestionSpec
    options: BaseModel

    @property
    def id(self) -> str:
        return self.spec.id

    def options_as(self, model: type[_Model]) -> _Model:
        """The options as the kind's own model (`q.options_as(FunctionOptions)`); TypeError for another kind's."""
        if not isinstance(self.options, model):
            raise TypeError(f"{self.id}: its options are {type(self.options).__name__}, not {model.__name__}")
        return self.options


@dataclass(frozen=True)
class Rubric:
    path: Path
    spec: RubricSpec
    questions: tuple[Question, ...]
    sha256: str
    handout: Handout = Handout(None)  # noqa: RUF009 (no handout: frozen, so one shared instance is right)

    @property
    def requires(self) -> tuple[str, ...]:
        return tuple(self.spec.requires)

    @property
    def starter_path(self) -> Path | None:
        return (self.path.parent / self.spec.starter).resolve() if self.spec.starter else None

    @property
    def assignment(self) -> str:
        return self.spec.assignment

    @property
    def limits(self) -> Limits:
        return self.spec.limits

    @property
    def reference_path(self) -> Path:
        return (self.path.parent / self.spec.reference).resolve()

    @property
    def max_score(self) -> float:
        return sum(q.spec.points for q in self.questions)

    def load_reference(self) -> ModuleType:
        # Named by its path too: two references of one assignment (a copy being fixed) are two modules.
        tag = hashlib.sha256(str(self.reference_path).encode("utf-8", "surrogateescape")).hexdigest()[:10]
        if self.handout.folder is not None and str(self.handout.folder) not in sys.path:
            sys.path.append(str(self.handout.folder))  # a reference may use the course's helpers as students do
        return load_module(self.reference_path, f"_grader_reference_{self.assignment.replace('-', '_')}_{tag}")


def load_module(path: Path, name: str) -> ModuleType:
    """Import a reference module from its file, once per process; it never enters a student's worker."""
    with _LOADING:  # a module is in sys.modules before it has run: no other thread may take it half made
        return _load_module(path, name)


_LOADING = threading.RLock()


def _load_module(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise GraderError(f"reference module not found: {path}")
    # The course's own modules beside the reference import as the reference expects (`from course_utils
    # import ...`); in the grader's process only, never the worker's.  They are in the cache key too.
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise GraderError(f"reference module {path} failed to import: {exc!r}") from exc
    return module


def _handout(path: Path, spec: RubricSpec) -> Handout:
    """The rubric's handout folder, checked: within the limits, and holding neither the reference nor the rubric."""
    if spec.starter and not (path.parent / spec.starter).is_file():
        raise RubricError(str(path), f"the starter notebook {spec.starter} does not exist", key="starter")
    if not spec.handout:
        return Handout(None)
    folder = (path.parent / spec.handout).resolve()
    try:
        handout = load_handout(folder)
    except (HandoutError, OSError) as exc:
        raise RubricError(str(path), str(exc), key="handout") from exc
    reference = (path.parent / spec.reference).resolve()
    for secret, what in ((reference, "the reference"), (path.resolve(), "the rubric")):
        if secret.is_relative_to(folder):
            raise RubricError(str(path), f"the handout folder {folder} holds {what} ({secret.name}): students "
                              "would see it; keep it outside the handout", key="handout")
    return handout


def _loc(err: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(top level)"


def load_rubric(path: str | Path) -> Rubric:

    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise GraderError(f"cannot read rubric {path}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise RubricError(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RubricError(str(path), "a rubric is a mapping with 'assignment', 'reference' and 'questions'")
    try:
        spec = RubricSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        question = None
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
            items = raw.get("questions") or []
            qraw = items[loc[1]] if loc[1] < len(items) else None
            question = str(qraw.get("id")) if isinstance(qraw, dict) and qraw.get("id") else f"question #{loc[1] + 1}"
            loc = loc[2:]
        key = ".".join(str(p) for p in loc) or None
        raise RubricError(str(path), err["msg"], question, key) from exc
    questions = []
    for q in spec.questions:
        try:
            model = options_class(q.kind)
        except KeyError as exc:
            raise RubricError(str(path), str(exc.args[0]), q.id, "kind") from exc
        try:
            options = model.model_validate(q.options)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise RubricError(str(path), err["msg"], q.id, _loc(err)) from exc
        questions.append(Question(q, options))
    rubric = Rubric(path.resolve(), spec, tuple(questions), hashlib.sha256(raw_bytes).hexdigest(), _handout(path, spec))
    if spec.total is not None and abs(rubric.max_score - spec.total) > 1e-9:
        raise RubricError(str(path), f"points add up to {rubric.max_score:g}, not the declared total {spec.total:g}", key="total")
    return rubric
