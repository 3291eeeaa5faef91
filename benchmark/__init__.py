"""vidcap-bench: regenerate the report's comparisons as tables, figures and claim verdicts."""
