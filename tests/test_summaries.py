"""report/summaries.py and the site's reading of a folder: the run table from batches and from the cache equals the
one from the whole folder, the cache follows the files' contents, and figures draw a bounded number of seeds."""

import hashlib
import json
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.benchmark import replicate
from report import summaries
from report.data import FIGURE_SEEDS, load
from report.grading.runs import run_table


def whole_folder_table(folder) -> pd.DataFrame:
    return run_table(store.load(folder))


def test_the_run_table_of_batches_equals_the_whole_folders(smoke_results, monkeypatch):
    expected = whole_folder_table(smoke_results)
    monkeypatch.setattr(summaries, "BATCH_BYTES", 1)  # one file per batch
    files, recorded, runs = summaries.load(smoke_results)
    assert files == store.run_files(smoke_results)
    pd.testing.assert_frame_equal(runs, expected)
    pd.testing.assert_frame_equal(recorded, store.load(smoke_results).runs)


def test_a_rebuild_reads_only_the_files_whose_content_changed(smoke_results, tmp_path, monkeypatch):
    folder = tmp_path / "results"
    shutil.copytree(smoke_results, folder)
    summaries.load(folder)
    summarised = []
    monkeypatch.setattr(summaries, "summarise", lambda paths, compare: summarised.extend(paths) or
                        [(store.read_metadata(p), {}) for p in paths])
    summaries.load(folder)
    assert summarised == []  # every summary from the cache
    changed = store.run_files(folder)[0]
    table = pq.read_table(changed)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    meta["run"]["wall_time_s"] = 123.0
    del meta[store.CHECKSUM]  # a file written before checksums: it reads, unverified
    pq.write_table(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}), changed)
    monkeypatch.undo()
    _, _, runs = summaries.load(folder)
    assert runs.set_index("run_id").loc[meta["run"]["run_id"], "wall_time_s"] == 123.0
    pd.testing.assert_frame_equal(runs, whole_folder_table(folder))


def test_a_build_neither_computes_nor_caches_what_a_diff_compares(smoke_results, tmp_path, monkeypatch):
    folder = tmp_path / "results"
    shutil.copytree(smoke_results, folder)
    for name in ("compared", "compare_files"):
        monkeypatch.setattr(summaries, name, lambda *args: pytest.fail("a build computed what a diff compares"))
    read, columns = store.read_arrow, set()
    monkeypatch.setattr(store, "read_arrow", lambda path, expected, wanted=None, **kwargs:
                        columns.update(wanted or expected) or read(path, expected, wanted, **kwargs))
    _, _, runs = summaries.load(folder)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(runs, whole_folder_table(folder))
    assert summaries.cache_path(folder).is_file() and not summaries.compared_path(folder).exists()
    assert columns and not columns & {"quantity", "bin_left", "bin_right", "count"}  # no histogram read


def test_a_corrupt_cache_is_recomputed(smoke_results):
    summaries.load(smoke_results)
    cache = summaries.cache_path(smoke_results)
    cache.write_bytes(b"not a pickle")
    _, _, runs = summaries.load(smoke_results)
    pd.testing.assert_frame_equal(runs, whole_folder_table(smoke_results))
    assert summaries.read_cache(cache, 2)  # written again


def test_a_corrupt_run_file_is_one_clear_error_from_a_worker_too(smoke_results, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(smoke_results, folder)
    broken = store.run_files(folder)[1]
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(store.StoreError, match=broken.name):
        summaries.load(folder)


def test_figures_draw_at_most_figure_seeds_while_cells_count_every_seed(smoke_results, tmp_path):
    folder = tmp_path / "many"
    files = len(store.run_files(smoke_results))
    seeds_per_cell = 2 * 6  # the smoke folder's 2 seeds, copied 6 times under new seeds
    replicate(smoke_results, folder, files * 6)
    data = load(folder)
    assert set(data.cells["seeds"]) == {seeds_per_cell} and FIGURE_SEEDS < seeds_per_cell
    key = (data.cells["scenario"].iloc[0], int(data.cells["depth"].iloc[0]))
    every = sorted(data.runs.loc[data.runs["scenario"] == key[0], "seed"])
    for kind in ("step", "layer", "epoch", "runs"):
        rows = data.rows(kind, [key], every)
        assert sorted(set(rows["seed"])) == every[:FIGURE_SEEDS], kind
    step = store.load(folder).step
    raw = step[(step["scenario"] == key[0]) & (step["seed"].isin(every[:FIGURE_SEEDS]))]
    assert len(data.rows("step", [key], every)) == len(raw)


def test_the_cache_is_json_data_and_a_cache_of_another_structure_is_recomputed(smoke_results):
    summaries.load(smoke_results)
    cache = summaries.cache_path(smoke_results)
    digest, text = cache.read_bytes().split(b"\n", 1)
    assert json.loads(text) and cache.suffix == ".json"
    for planted in (b"\x80\x04\x95 a pickle", digest + b"\n[1, 2]", digest + b"\n" + text.replace(b"0", b"1", 1),
                    hashlib.sha256(b'{"a": [1, 2]}').hexdigest().encode() + b'\n{"a": [1, 2]}'):
        cache.write_bytes(planted)
        assert summaries.read_cache(cache, 2) == {}
        _, _, runs = summaries.load(smoke_results)
        pd.testing.assert_frame_equal(runs, whole_folder_table(smoke_results))


def test_the_cache_clean_up_removes_only_folders_of_summaries_it_made(smoke_results, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADBENCH_CACHE", str(tmp_path))
    old = tmp_path / "summaries" / "0123456789abcdef"
    old.mkdir(parents=True)
    (old / summaries.CACHE_MARKER).touch()
    mine = tmp_path / "summaries" / "mine"
    mine.mkdir()
    (mine / "important.txt").write_text("mine")
    summaries.load(smoke_results)
    assert not old.exists() and (mine / "important.txt").read_text() == "mine"
    assert summaries.cache_path(smoke_results).is_file()


def test_a_cache_folder_that_is_a_file_is_skipped(smoke_results, tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("mine")
    monkeypatch.setenv("GRADBENCH_CACHE", str(tmp_path / "cache"))
    _, _, runs = summaries.load(smoke_results)
    pd.testing.assert_frame_equal(runs, whole_folder_table(smoke_results))
    assert (tmp_path / "cache").read_text() == "mine"
