"""From parquet results to a static site: analysis, figures, pages."""
