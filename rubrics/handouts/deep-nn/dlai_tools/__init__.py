"""The course's own tools (handed out with the assignment; do not edit)."""
