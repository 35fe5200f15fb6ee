"""Stage 6, feedback: results rendered for people, a report per student (HTML, Markdown), the class
summary and what the terminal prints (`terminal`), from the templates in `templates/`."""
