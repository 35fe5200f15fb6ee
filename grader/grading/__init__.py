"""Stage 5, grading: one submission (`submission`: cells, then each question's check), a batch of jobs with
its failure boundary (`batch`), where the jobs run (`executors`: this process or a pool; `cluster`: Dask),
and the class-wide setup problems seen across a batch (`course_setup`).

What leaves this stage: a `SubmissionResult` per job (grader.results)."""
