"""What the check kinds share: generated cases (`cases`), comparisons with explanations
(`compare`), the smallest failing input (`shrink`) and named mistakes (`diagnose`)."""
