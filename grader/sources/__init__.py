"""Stage 2, the sources: where submissions come from (`discover`: a folder, a folder per student, an LMS
download), who they are (`roster`), which file counts (`late`: the newest resubmission and late work), and a
submission read into cells (`load`, `cells`).

What leaves this stage: `Submission`s (code and answer cells) and the identities and lateness of each job."""
