"""The author's side: `validate` (is a rubric right and strong enough, in stages), `mutants` (small
wrong versions of the reference), `starter` (the handout's starter notebook graded) and `hidden` (hidden
questions stay hidden)."""
