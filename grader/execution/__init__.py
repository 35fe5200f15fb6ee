"""Stage 3, execution: running a student's code apart from the grader.

`session` is the grader's side of one worker (the question API: define, call, replay); `sandbox`,
`launchers`, `zygote` and `user_sandbox` start the worker under its OS sandbox and limits; `workdir` builds
its working folder.  What crosses this boundary is plain data only: requests and replies of
`grader.worker.protocol`, never a pickle."""
