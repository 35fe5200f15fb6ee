"""The one small interface every check kind implements."""
from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from grader.results import Outcome
from grader.rubric.options import Options

if TYPE_CHECKING:
    from grader.execution.session import WorkerSession
    from grader.rubric.schema import Question, Rubric
    from grader.sources.load import Submission


# Held by every call of a reference function a check makes (`CheckContext.reference_attr`): the slots of a batch
# graded in threads share one reference module, and a reference that seeds torch's global generator and then
# draws from it must not have another slot's call in between.
REFERENCE = threading.RLock()


def serialized(fn: Any) -> Any:
    """`fn` (a reference's function), called under REFERENCE; its name and signature are its own."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with REFERENCE:
            return fn(*args, **kwargs)

    return call


def question_seed(rubric: Rubric, question: Question, override: int | None = None) -> int:
    """The seed a question's cases (and training data) are drawn with: its own `seed` key, else the rubric's.

    A hidden question's is drawn from a stream of its own, a hash of that seed and the question's id: a case
    generator it shares with a public question (the same seed too) would otherwise give it that question's
    inputs, which the public question's report (and the student's kit) may show.
    """
    seed = rubric.spec.seed if override is None else override
    if question.spec.visibility != "hidden":
        return seed
    digest = hashlib.sha256(f"hidden:{seed}:{question.id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # within torch.Generator.manual_seed's range


@dataclass
class CheckContext:
    """What a check may use.  `session` talks to the student's worker; everything else is grader-side."""

    rubric: Rubric
    question: Question
    submission: Submission
    session: WorkerSession
    reference: ModuleType
    device: str = "cpu"
    # Shrink failing cases and show them in full (extra student calls, bounded): on when grading a student,
    # off where only the verdict counts (mutation analysis grades hundreds of mutants).
    reproduce_failures: bool = False

    @property
    def shows_inputs(self) -> bool:
        """Whether the student may see this question's inputs: never a hidden question's."""
        return self.reproduce_failures and self.question.spec.visibility != "hidden"

    @property
    def seed(self) -> int:
        return self.rubric.spec.seed

    def case_seed(self, override: int | None = None) -> int:
        """`question_seed` of this question: what its cases are drawn with (`override`: its `seed` key)."""
        return question_seed(self.rubric, self.question, override)

    @property
    def answer(self) -> str:
        """The student's top-level name this question reads."""
        name = self.question.spec.answer
        if not name:
            raise ValueError(f"{self.question.id}: this kind needs 'answer'")
        return name

    @property
    def timeout(self) -> float:
        return self.question.spec.timeout or self.rubric.limits.call_timeout

    def reference_attr(self, name: str) -> Any:
        from grader.errors import GraderError

        try:
            value = getattr(self.reference, name)
        except AttributeError:
            raise GraderError(
                f"{self.rubric.path.name}: {self.question.id}: reference module has no '{name}'"
            ) from None
        # Functions only: a value the rubric compares (an nn.Module, a class, a tensor) is given as it is.
        return serialized(value) if isinstance(value, (FunctionType, MethodType, functools.partial)) else value


class Check(Protocol):
    """A check kind: validated options and one function from context to outcome.

    `run` is called in the grader process, never in the student's; it must not trust anything the worker
    returns beyond its being plain data.
    """

    Options: ClassVar[type[Options]]

    def run(self, ctx: CheckContext) -> Outcome: ...
