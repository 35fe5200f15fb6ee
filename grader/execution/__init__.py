"""Stage 3, execution: running a student's code apart from the grader.

`session` is the grader's side of one worker (the question API: run_cells, define, call, get, replay);
`transport` carries its requests to the worker and back (pipes to a worker process, or this process for the
kit) and `replies` checks what comes back; `sandbox`, `launchers`, `zygote`, `forkserver` and `user_sandbox` start
the worker under its OS sandbox and limits; `workdir` builds its working folder.  What crosses this boundary is plain data
only: the request records of `grader.worker.messages` and JSON replies, never a pickle."""
