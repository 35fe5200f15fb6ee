"""Formulas as SymPy: the whitelist parser of formula text and LaTeX answers, and the formula problem
(symbols, expected formula, sample points) that the rubric validates and the `formula` check evaluates.

Below the rubric stage: it imports nothing of the grader but SymPy."""
