"""`grader manual`: TA scores for free-text questions, applied to a graded folder without running student code.

    grader manual --out DIR                 prompt question by question in the terminal
    grader manual import FILE --out DIR     scores from a CSV (student,question,score,comment) or YAML file
    grader manual export FILE --out DIR     a CSV of the answers still to score, to fill in and import

What is applied and how it reaches disk is grader.classroom.ta_scores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from grader.atomic import atomic_write
from grader.classroom.ta_scores import (
    CSV_COLUMNS,
    TAScore,
    answers_to_score,
    apply_scores,
    load_results,
    named_scores,
    parse_score,
    pending_count,
    read_scores,
    resolve_rubric,
    save,
)
from grader.errors import GraderError
from grader.feedback.terminal import printable
from grader.results import QuestionResult, SubmissionResult
from grader.rubric.schema import Rubric
from grader.spreadsheet import Cell, csv_text


# -- commands ---------------------------------------------------------------------------------------------------
def import_scores(file: Path, out: Path, rubric_path: Path | None = None, ta: str = "") -> int:
    results = load_results(out)
    rubric = resolve_rubric(out, rubric_path, results.values())
    scores = named_scores(out, results, read_scores(file))
    updated = apply_scores(rubric, results, scores, ta)
    save(out, rubric, updated, sorted({s.student for s in scores}))
    print(f"applied {len(scores)} TA scores to {len({s.student for s in scores})} submissions; "
          f"{pending_count(updated)} answers still wait for a TA")
    return 0


def export_pending(file: Path, out: Path, rubric_path: Path | None = None) -> int:
    results = load_results(out)
    rubric = resolve_rubric(out, rubric_path, results.values())
    # The student's answer is their own text, in a file a TA opens in a spreadsheet: grader.spreadsheet keeps
    # any cell from running there.
    rows: list[list[Cell]] = [list(CSV_COLUMNS)]
    rows += [[folder, q.qid, "", "", q.details.get("answer") or ""] for folder, q in answers_to_score(rubric, results, only_pending=True)]
    atomic_write(file, csv_text(rows, lineterminator="\r\n"))
    print(f"wrote {pending_count(results)} answers to score to {file}")
    return 0


def enter_scores(
    out: Path,
    rubric_path: Path | None = None,
    *,
    ta: str = "",
    rescore: bool = False,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
) -> int:
    """Prompt for each answer in turn; progress is saved after every student, so quitting loses nothing."""
    results = load_results(out)
    rubric = resolve_rubric(out, rubric_path, results.values())
    guides = {q.id: getattr(q.options, "guide", "") for q in rubric.questions}
    todo = answers_to_score(rubric, results, only_pending=not rescore)
    if not todo:
        say("nothing to score: no TA-graded answer is pending")
        return 0
    for folder in sorted({f for f, _ in todo}):
        scores: list[TAScore] = []
        for _, q in (item for item in todo if item[0] == folder):
            _show(say, folder, q, guides.get(q.qid, ""))
            entry = _prompt(ask, say, folder, q)
            if entry == "quit":
                return _finish(out, rubric, results, folder, scores, ta, say)
            if isinstance(entry, TAScore):
                scores.append(entry)
        _finish(out, rubric, results, folder, scores, ta, say)
    say(f"done; {pending_count(results)} answers still wait for a TA")
    return 0


def _finish(out: Path, rubric: Rubric, results: dict[str, SubmissionResult], folder: str, scores: list[TAScore], ta: str, say: Callable[[str], None]) -> int:
    if scores:
        results.update(apply_scores(rubric, results, scores, ta))
        save(out, rubric, results, [folder])
        say(f"saved {len(scores)} score(s) for {folder}")
    return 0


def _show(say: Callable[[str], None], folder: str, q: QuestionResult, guide: str) -> None:
    say("")
    say(f"== {folder} · {q.qid} {q.title} ({q.max_score:g} pts)")
    if guide:
        say(f"   guide: {guide}")
    answer = q.details.get("answer")
    # The student's own text, on the TA's terminal: its control characters (escapes) are shown, never obeyed.
    say(printable(answer) if answer else f"(no `Answer {q.qid}:` cell in this submission)")


def _prompt(ask: Callable[[str], str], say: Callable[[str], None], folder: str, q: QuestionResult) -> TAScore | str | None:
    while True:
        try:
            raw = ask(f"score 0..{q.max_score:g} (Enter skips, q quits): ").strip()
        except EOFError:
            return "quit"
        if raw.lower() in ("q", "quit"):
            return "quit"
        if not raw:
            return None
        try:
            score = parse_score(f"{folder} {q.qid}", raw)
        except GraderError as exc:
            say(str(exc))
            continue
        if not 0 <= score <= q.max_score:
            say(f"a score for {q.qid} lies in 0..{q.max_score:g}")
            continue
        try:
            comment = ask("comment: ").strip()
        except EOFError:
            comment = ""
        return TAScore(folder, q.qid, score, comment, f"{folder} {q.qid}")


def run_manual(action: str | None, file: Path | None, out: Path, rubric: Path | None, *, ta: str = "", rescore: bool = False) -> int:
    if action is None:
        if file is not None:
            raise GraderError("a file is given only with `import FILE` or `export FILE`")
        return enter_scores(out, rubric, ta=ta, rescore=rescore)
    if file is None:
        raise GraderError(f"`grader manual {action}` needs a FILE")
    return import_scores(file, out, rubric, ta) if action == "import" else export_pending(file, out, rubric)
