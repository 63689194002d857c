"""Studies: the sweep YAML schema (spec), results -> tables (analysis), plots and report (report)."""
