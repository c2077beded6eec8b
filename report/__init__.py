"""From parquet results to a static site: grading, figures, pages."""
