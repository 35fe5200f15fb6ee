# A .py submission has no Markdown cells: its free-text answers are missing and flagged for the TA.
is_convex = True
