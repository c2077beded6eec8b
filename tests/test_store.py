"""bench/store.py: a run file read back is the run written, sealed by its checksum, written whole or not at all;
the folder checks refuse what would be counted wrongly."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench import store

CODE = {"measurement_code": "m1", "statistic_code": {"layer.delta_norm": "d1", "layer.kernel_norm": "k1"}}
RUN = {"run_id": "sigmoid-d2-s0-abc", "scenario": "sigmoid", "depth": 2, "seed": 0, **CODE,
       "dataset": "synthetic", "tf_version": "2.99.0", "status": "completed"}


def kind_rows(kind: str, rows: int = 3) -> pd.DataFrame:
    """`rows` rows of one kind with every column of that kind filled, distinct per row and column."""
    columns = {}
    for i, (name, kind_type) in enumerate(store.COLUMNS[kind].items()):
        if pa.types.is_string(kind_type):
            columns[name] = [f"{name}-{r}" for r in range(rows)]
        elif pa.types.is_boolean(kind_type):
            columns[name] = [r % 2 == 0 for r in range(rows)]
        elif pa.types.is_integer(kind_type):
            columns[name] = [10 * i + r for r in range(rows)]
        else:
            columns[name] = [np.float32(0.25 * i + r + 0.125) for r in range(rows)]
    return pd.DataFrame(columns)


def run_tables(rows: int = 3) -> dict[str, pd.DataFrame]:
    return {kind: kind_rows(kind, rows) for kind in store.KINDS}


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "results"
    store.write_run(path / f"{RUN['run_id']}.parquet", RUN, run_tables())
    return path


def test_a_run_read_back_is_the_run_written(folder):
    results = store.load(folder)
    assert results.runs.to_dict("records") == [RUN]
    written = run_tables()
    for kind in store.KINDS:
        table = results.table(kind)
        assert list(table.columns) == [*store.RUN_KEYS, *store.COLUMNS[kind]], kind
        assert (table[list(store.RUN_KEYS)] == pd.Series({k: RUN[k] for k in store.RUN_KEYS})).all().all(), kind
        for name, kind_type in store.COLUMNS[kind].items():
            got, expected = table[name].tolist(), written[kind][name].tolist()
            assert got == expected, (kind, name)
            if pa.types.is_floating(kind_type):
                assert table[name].dtype == np.float32, (kind, name)  # not widened: the float32 the train step made


def test_every_kind_s_rows_leave_the_other_kinds_columns_null(folder):
    """What lets any parquet reader read the folder as one table: a row's kind says which columns it uses."""
    raw = pq.read_table(store.run_files(folder)[0]).to_pandas()
    assert raw.columns.tolist() == store.schema().names
    assert raw["kind"].value_counts().to_dict() == {kind: 3 for kind in store.KINDS}
    for kind in store.KINDS:
        rows = raw[raw["kind"] == kind]
        own = {"kind", *store.RUN_KEYS, *store.COLUMNS[kind]}
        assert rows[[c for c in raw.columns if c not in own]].isna().all().all(), kind
        assert rows[list(store.COLUMNS[kind])].notna().all().all(), kind


def test_the_schema_has_each_kind_s_columns_in_their_types():
    schema = store.schema()
    assert schema.field("kind").type == pa.string()
    for key, key_type in store.RUN_KEYS.items():
        assert schema.field(key).type == key_type
    for kind, columns in store.COLUMNS.items():
        for name, kind_type in columns.items():
            assert schema.field(name).type == kind_type, (kind, name)
    # a column two kinds share has one type for both (one schema for the whole folder)
    assert len(schema.names) == len(set(schema.names))


def test_a_run_file_is_the_same_as_the_bytes_a_worker_sends(folder, tmp_path):
    raw = store.run_bytes(RUN, run_tables())
    assert raw == store.run_files(folder)[0].read_bytes()
    target = tmp_path / "received" / f"{RUN['run_id']}.parquet"
    run, tables = store.store_run_bytes(raw, target, CODE)
    assert run == RUN and target.read_bytes() == raw
    assert tables["layer"]["layer_name"].tolist() == ["layer_name-0", "layer_name-1", "layer_name-2"]
    with pytest.raises(store.StoreError, match="measured by gradbench code m1"):
        store.store_run_bytes(raw, tmp_path / "other" / f"{RUN['run_id']}.parquet", {**CODE, "measurement_code": "m2"})
    assert not (tmp_path / "other" / f"{RUN['run_id']}.parquet").exists()


def test_a_damaged_byte_is_caught_by_the_checksum(folder):
    path = store.run_files(folder)[0]
    info = json.loads(pq.ParquetFile(path).schema_arrow.metadata[store.METADATA_KEY])
    assert info[store.CHECKSUM] == store.checksum(path.read_bytes(), info)
    raw = bytearray(path.read_bytes())
    raw[len(store.body(bytes(raw))) // 2 + 4] ^= 0xFF  # a flipped byte in the data pages
    path.write_bytes(bytes(raw))
    with pytest.raises(store.StoreError, match="does not match its checksum"):
        store.load(folder)


def test_another_schema_version_is_refused(folder):
    path = store.run_files(folder)[0]
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    meta["schema_version"] = store.SCHEMA_VERSION + 1
    pq.write_table(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}), path)
    with pytest.raises(store.StoreError, match=f"schema version {store.SCHEMA_VERSION + 1}"):
        store.load(folder)


def no_temporary_files(folder) -> bool:
    beside = list(folder.parent.glob(".*"))
    return not beside and not list(folder.glob(".*")) and not list(folder.glob("*.tmp"))


def test_a_write_leaves_no_temporary_file_and_a_failed_one_leaves_the_old_file(folder):
    path = store.run_files(folder)[0]
    before = path.read_bytes()
    assert no_temporary_files(folder)

    def half_then_full_disk(tmp):
        tmp.write_bytes(before[:100])
        raise OSError(28, "No space left on device")

    with pytest.raises(store.StoreError, match="No space left on device"):
        store.replace_atomically(path, half_then_full_disk)
    assert path.read_bytes() == before
    assert no_temporary_files(folder)
    assert store.load(folder).runs.to_dict("records") == [RUN]


def test_a_write_goes_on_when_another_writer_removes_the_empty_partial_folder_under_it(folder):
    """Two --jobs processes store runs at once: one that has just finished removes the partial folder, empty, in the
    moment between the other's making it and opening its file there."""
    path, opened = folder / "other.parquet", []

    def write_after_the_other_removed_it(tmp):
        if not opened:
            tmp.parent.rmdir()
        opened.append(tmp)
        tmp.write_bytes(b"rows")

    store.replace_atomically(path, write_after_the_other_removed_it)
    assert path.read_bytes() == b"rows" and len(opened) == 2
    assert no_temporary_files(folder)


def test_rows_split_by_kind_in_any_order_are_those_a_filter_keeps(folder):
    """A file stores each kind's rows together, and the split takes them as slices; rows of kinds interleaved
    (another writer's file) split the same as a filter by kind."""
    table = pa.concat_tables([pq.read_table(store.run_files(folder)[0])] * 2)
    shuffled = table.take(np.random.default_rng(0).permutation(len(table)))
    for rows in (table, shuffled):
        split = store.by_kind(rows)
        for kind in store.KINDS:
            kept = rows.filter(pc.equal(rows.column("kind"), kind)).select(store.kind_columns(kind))
            assert split[kind].equals(kept), kind
            assert store.compact(split[kind]).equals(kept), kind


def test_a_dead_writer_s_temporary_file_is_removed_and_a_live_one_s_kept(folder):
    partial = store.partial_folder(folder)
    partial.mkdir()
    child = os.fork() if hasattr(os, "fork") else pytest.skip("no fork")
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)  # a pid no process has any more
    dead, live = partial / f"x.parquet.{child}.tmp", partial / f"y.parquet.{os.getpid()}.tmp"
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    assert store.remove_leftovers(folder) == [dead]
    assert not dead.exists() and live.exists()
    live.unlink()
    assert store.remove_leftovers(folder) == [] and not partial.exists()


def test_a_run_copied_under_another_name_is_refused_naming_both(folder):
    shutil.copyfile(folder / f"{RUN['run_id']}.parquet", folder / "copy.parquet")
    with pytest.raises(store.StoreError, match=f"copy.parquet, {RUN['run_id']}.parquet hold the same run"):
        store.load(folder)
    store.refuse_copies([folder / "a.parquet", folder / "b.parquet"],
                        pd.DataFrame({"run_id": ["one", "two"]}))  # two runs: nothing to refuse


def test_run_files_are_sorted_and_a_folder_of_that_name_is_refused(folder):
    for name in ("b", "a", "c"):
        store.write_run(folder / f"{name}.parquet", {**RUN, "run_id": name}, run_tables(1))
    (folder / "notes.txt").write_text("not a run")
    names = [p.name for p in store.run_files(folder)]
    assert names == sorted(names) == ["a.parquet", "b.parquet", "c.parquet", f"{RUN['run_id']}.parquet"]
    assert store.load(folder).runs["run_id"].tolist() == ["a", "b", "c", RUN["run_id"]]
    (folder / "d.parquet").mkdir()
    with pytest.raises(store.StoreError, match="d.parquet: a folder, not a run file"):
        store.run_files(folder)


def test_a_folder_of_other_measurement_code_or_dataset_is_refused_before_training(folder):
    store.check_folder(folder, CODE, ("synthetic",))  # its own: accepted
    with pytest.raises(store.StoreError, match=r"1 runs .* were measured by other gradbench code \(m1; this one is m2"):
        store.check_folder(folder, {**CODE, "measurement_code": "m2"}, ("synthetic",))
    with pytest.raises(store.StoreError, match="holds runs on synthetic, and these would train on digits"):
        store.check_folder(folder, CODE, ("digits",))
    os.rename(folder / f"{RUN['run_id']}.parquet", folder / "renamed.parquet")
    with pytest.raises(store.StoreError, match="holds run sigmoid-d2-s0-abc under another name"):
        store.check_folder(folder, CODE, ("synthetic",))


def test_a_run_is_resumed_unless_a_statistic_it_holds_would_be_measured_differently(folder):
    declared_since = {**CODE, "statistic_code": {**CODE["statistic_code"], "layer.new_statistic": "n1"}}
    store.check_folder(folder, declared_since, ("synthetic",))  # missing for the stored run, not different
    dropped = {**CODE, "statistic_code": {"layer.delta_norm": "d1"}}
    store.check_folder(folder, dropped, ("synthetic",))  # no longer measured: the stored values stay
    changed = {**CODE, "statistic_code": {**CODE["statistic_code"], "layer.delta_norm": "d2"}}
    with pytest.raises(store.StoreError, match=r"1 runs \(sigmoid-d2-s0-abc.parquet\) were measured by other code "
                                               r"of layer.delta_norm, so their numbers may differ"):
        store.check_folder(folder, changed, ("synthetic",))
    with pytest.raises(store.StoreError, match="install the same gradbench on every worker"):  # a worker: exactly
        store.store_run_bytes(store.run_bytes(RUN, run_tables()), folder / "w" / f"{RUN['run_id']}.parquet",
                              declared_since)


def test_a_file_written_before_a_statistic_was_declared_reads_it_as_missing(folder, tmp_path):
    path = store.run_files(folder)[0]
    older = pq.read_table(path).drop_columns(["inactive_fraction", "forget_gate"])
    store.write_atomically(older, tmp_path / "older.parquet")  # sealed with its own checksum
    results = store.load(tmp_path)
    assert results.layer["inactive_fraction"].isna().all() and results.time["forget_gate"].isna().all()
    assert results.layer["delta_norm"].equals(store.load(folder).layer["delta_norm"])
    # a key column is not optional
    store.write_atomically(older.drop_columns(["layer_role"]), tmp_path / "older.parquet")
    with pytest.raises(store.StoreError, match="older.parquet: its data cannot be read \\(no column layer_role\\)"):
        store.load(tmp_path)
    renamed = older.rename_columns([("delta_nors" if c == "delta_norm" else c) for c in older.column_names])
    renamed = renamed.replace_schema_metadata(older.schema.metadata)
    store.write_atomically(renamed, tmp_path / "older.parquet")  # a damaged name is not a statistic declared since
    with pytest.raises(store.StoreError, match="older.parquet: its data cannot be read \\(a column no gradbench "
                                               "writes, delta_nors\\)"):
        store.load(tmp_path)


def test_an_empty_folder_loads_as_empty_tables_with_every_column(tmp_path):
    results = store.load(tmp_path)
    assert results.runs.empty
    for kind in store.KINDS:
        assert results.table(kind).empty and list(results.table(kind).columns) == [*store.RUN_KEYS,
                                                                                  *store.COLUMNS[kind]]
