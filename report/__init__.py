"""From parquet results to a static site: grading, figures, pages.

summaries.py reads each run file once into its run-table row (grading/: rules, statistics, verdicts, cells, claims) and,
for a diff only, what it compares of it, cached by content and code; data.py gathers a folder's tables; depth_scan.py,
recurrent.py and bench/theory.py hold the science beside the measurements. Each page kind is registered once in pages.py
(builder, template, navigation); its data are plain dataclasses (views.py, phenomena.py, article.py, scenario_pages.py,
overview.py) with figures from figures/ (one module each, registered in its __init__), rendered by render.py (Jinja2,
templates/) and written by site.py, which reuses every page, figure and summary whose inputs and code (bench/closure.py)
did not change. sets.py makes a site of several result sets; diff.py, floor.py and matrix.py compare them. own_models.py
gives a user's recorded models their page, compared with the catalogue's cells (of the same set, or of a catalogue set).
"""
