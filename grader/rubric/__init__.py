"""Stage 1, the rubric: the schema an author writes (`schema`), each check kind's options (`options`) and
the course's handout and required packages (`handout`).

What leaves this stage: a validated `Rubric` with its `Question`s, their typed options, the reference module and
the `Handout`."""
