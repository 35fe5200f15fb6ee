"""Remote functions for tests/grading/test_cluster.py, importable on the Dask workers it starts (PYTHONPATH=repo)."""
from __future__ import annotations

import os
from typing import Any

from grader.grading.cluster import Payload, RubricBundle, grade_remote


def die_grading_ben(bundle: RubricBundle, task: Payload) -> dict[str, Any]:
    """Grades as the real task does, except that grading `ben` kills the Dask worker, every time."""
    if task.name == "ben":
        os._exit(1)
    return grade_remote(bundle, task)
