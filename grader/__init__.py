"""dl-grader: grade deep-learning homework with checks that run outside the student's process."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
