"""`grader kit RUBRIC --out FILE`: the student kit of an assignment (see `grader.kit`)."""
from __future__ import annotations

from pathlib import Path

from grader.authoring.hidden import kit_leaks
from grader.errors import GraderError
from grader.kit.build import build_kit
from grader.kit.schema import write_kit
from grader.rubric.schema import load_rubric


def kit(rubric_path: Path, out: Path) -> int:
    rubric = load_rubric(rubric_path)
    data = build_kit(rubric)
    leaks = kit_leaks(rubric, [(q.id, q.check.model_dump(mode="json")) for q in data.questions])
    if leaks:
        raise GraderError(
            f"no kit written: it would hold hidden test data ({'; '.join(leak.describe() for leak in leaks)}); "
            "give each hidden question a case generator of its own"
        )
    size = write_kit(data, out, rubric.handout.files)
    checked = [q for q in data.questions if q.checked]
    left = [q.id for q in data.questions if not q.checked]
    print(
        f"wrote {out} ({size / 1024:.0f} KB): {len(checked)} of {len(data.questions)} public questions checked by the kit"
        + (f" ({', '.join(left)} only when graded)" if left else "")
        + f"; {data.hidden_questions} hidden questions left out"
        + (f"; with the handout's {len(rubric.handout.files)} files" if rubric.handout else "")
    )
    return 0
