"""Training and measuring: from a scenario of the catalogue to one parquet file per run.

scenarios.py holds the catalogue and the profiles (budgets, depths, seeds); sweep.py turns them into a grid of runs,
skips those stored and trains the rest a cell at a time (train.py, seeds side by side through one compiled step,
models.py builds the networks, data.py loads the images). Each statistic a run records is declared once in
statistics.py and computed in the train step (instrument.py) by its function in measures.py; store.py writes the
run file, its columns following from the declarations, with the run's config and provenance (provenance.py:
versions, device, and the code that measured it, per statistic). scan.py measures step 0 over depths; cluster.py
sends a sweep's runs to Dask workers; claims.py lets sweeps share a folder; benchmark.py times all of it.
For a user's own Keras model: recorder.py records its fit into a run file of the same schema (a callback, with the
same measures), probe.py profiles it at initialisation (python -m bench probe). theory.py is the mean-field
prediction (pure numpy) the probe and the report's depth scan and verdicts set beside the measurements.
"""
