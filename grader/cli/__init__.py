"""The `grader` command: `main` parses the command line and handles errors; one module per verb."""
