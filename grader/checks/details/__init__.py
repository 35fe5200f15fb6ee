"""Each kind's Details record, apart from its check where the check needs torch or SymPy: what a stored result's
details hold and how they are explained, imported by reports and `grader show` without the check (kinds whose
module is light keep theirs in it: `value`, `forbid`, `manual`).  The registry (grader.rubric.kinds) names them."""
