"""Stage 7, the classroom: what a graded class leaves behind and where it goes. The output folder
(`outdir`), the gradebook (`gradebook`, the one owner of OUT/gradebook.sqlite; `classbook` reads it), TA
work that survives re-grading (`tawork`), LMS and Gradescope files (`lms_export`, `score_files`,
`autograder`) and code similarity across a class (`similarity`)."""
