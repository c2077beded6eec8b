"""The grading layer: from a run's tables to statistics, verdicts, cells and the article's claims.

Pure pandas: every number on a page comes from here or from the figures' data, and every rule reads its numbers
from rules.THRESHOLDS, the one table the Methods page prints. One job a module:
rules (thresholds and rules), values (finite-value helpers), text (numbers as pages print them), stats (per-run
statistics), verdicts (a run's verdict and its expectation), runs (the run table), cells (the cell table),
claims (the article's claims).
"""
