"""A reference for the TA workspace's tests: one auto-graded value beside two TA-graded questions."""
answer = 42
