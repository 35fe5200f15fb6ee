"""The TA's workspace in the browser (`grader serve OUT`): grade TA-graded questions by answer groups and
rubric items, review and adjust any question.  Storage in `store`, the grading logic in `marking`, the web
app in `app`; every score reaches the class folder through `grader manual`'s `apply_scores` and `save`."""
from __future__ import annotations
