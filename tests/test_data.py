"""Tests for bench.data: real loaders, tiny IDX / .npz folders, and error messages."""
import gzip
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import data
from bench.data import DataError, load


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)


def _write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    """Write arr (uint8) in the standard IDX format: magic 0x0000080N, big-endian dims."""
    raw = struct.pack(">I", 0x800 + arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw += arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _tiny(n_train=12, n_test=5, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test))


def _write_idx_set(folder: Path, arrays, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(data.IDX_FILES, arrays):
        _write_idx(folder / (name + (".gz" if gz else "")), arr, gz)


def _write_npz(path: Path, arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))


def _check_images(ds, n_train, n_test, hw):
    assert ds.x_train.shape == (n_train, *hw, 1) and ds.x_test.shape == (n_test, *hw, 1)
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.image_shape == (*hw, 1) and ds.features == hw[0] * hw[1]


def test_synthetic_shapes_and_determinism():
    a, b = load("synthetic"), load("synthetic")
    _check_images(a, 2048, 512, (8, 8))
    assert a.num_classes == 10 and set(np.unique(a.y_train)) == set(range(10))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.source == "generated (seed 0)"
    _check_images(load("synthetic", train_samples=100, test_samples=30), 100, 30, (8, 8))


def test_synthetic_is_learnable():
    """A tiny relu MLP (numpy, full-batch gradient descent) gets far above chance quickly."""
    ds = load("synthetic")
    x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(0, 0.1, (64, 32)), rng.normal(0, 0.1, (32, 10))
    for _ in range(40):
        h = np.maximum(x @ w1, 0)
        p = np.exp(h @ w2 - (h @ w2).max(1, keepdims=True))
        g = (p / p.sum(1, keepdims=True) - np.eye(10)[y]) / len(x)
        w1 -= 0.5 * x.T @ ((g @ w2.T) * (h > 0))
        w2 -= 0.5 * h.T @ g
    pred = (np.maximum(ds.x_test.reshape(len(ds.x_test), -1) @ w1, 0) @ w2).argmax(1)
    assert (pred == ds.y_test).mean() > 0.5  # chance is 0.1


def test_digits():
    ds = load("digits")
    _check_images(ds, 1437, 360, (8, 8))
    assert ds.x_train.max() == 1.0 and ds.source == "scikit-learn bundled digits"
    _check_images(load("digits", train_samples=10, test_samples=4), 10, 4, (8, 8))


def test_returned_arrays_cannot_corrupt_cache():
    ds = load("digits")
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0, 0] = 5.0
    assert load("digits").x_train.max() == 1.0


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, gz):
    arrays = _tiny()
    _write_idx_set(tmp_path, arrays, gz)
    ds = load("mnist", data_dir=tmp_path)
    _check_images(ds, 12, 5, (28, 28))
    assert np.allclose(ds.x_train[..., 0] * 255, arrays[0]) and np.array_equal(ds.y_test, arrays[3])
    assert str(tmp_path) in ds.source and "idx" in ds.source
    _check_images(load("mnist", data_dir=tmp_path, train_samples=3, test_samples=2), 3, 2, (28, 28))


def test_npz_in_subfolder_and_env_var(tmp_path, monkeypatch):
    _write_npz(tmp_path / "fashion-mnist" / "fashion_mnist.npz", _tiny(7, 3))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    ds = load("fashion_mnist")
    _check_images(ds, 7, 3, (28, 28))
    assert ds.source.endswith("fashion_mnist.npz")


def test_fashion_folder_never_read_as_mnist(tmp_path):
    _write_idx_set(tmp_path / "fashion-mnist", _tiny())
    assert data._folders("mnist", str(tmp_path / "fashion-mnist")) == []
    assert data._folders("fashion_mnist", str(tmp_path))[0] == tmp_path / "fashion-mnist"


def test_corrupt_idx_names_file(tmp_path):
    _write_idx_set(tmp_path, _tiny())
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"this is not an idx file"))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load("mnist", data_dir=tmp_path)
    bad.write_bytes(b"not even gzip")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load("mnist", data_dir=tmp_path)


@pytest.mark.skipif(not data.DEBIAN_FASHION_DIR.is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_from_debian_folder():
    ds = load("fashion_mnist")
    _check_images(ds, 60000, 10000, (28, 28))
    assert str(data.DEBIAN_FASHION_DIR) in ds.source
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_missing_data_dir(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", data_dir=tmp_path / "nope")
    with pytest.raises(DataError, match="does not exist"):  # auto must not fall back to digits
        load("auto", data_dir=tmp_path / "nope")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "nope"))
    with pytest.raises(DataError, match=data.DATA_DIR_ENV):
        load("fashion_mnist")


def test_unknown_name():
    with pytest.raises(DataError) as e:
        load("cifar")
    valid = "auto, mnist, fashion_mnist, digits, synthetic"
    assert str(e.value) == f"unknown dataset 'cifar'; valid: {valid}"


def test_mnist_offline_fails_quickly_with_advice(tmp_path, monkeypatch):
    # Keras 3 fixes its cache dir at import time; make sure no real cache could be used.
    if "keras" in sys.modules and (Path.home() / ".keras/datasets/mnist.npz").exists():
        pytest.skip("keras already imported with a real cached mnist.npz")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / ".keras"))
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.monotonic()
    try:
        load("mnist", data_dir=empty)
    except DataError as e:
        msg = str(e)
    else:
        pytest.skip("mnist downloaded: this machine has network access")
    assert time.monotonic() - start < 60
    assert "--data-dir" in msg and data.DATA_DIR_ENV in msg and "\n" not in msg
    assert not list((tmp_path / ".keras").rglob("mnist.npz"))  # no broken partial download


def test_auto_picks_mnist_from_data_dir(tmp_path):
    _write_npz(tmp_path / "mnist.npz", _tiny(9, 4))
    ds = load("auto", data_dir=tmp_path)
    assert ds.name == "mnist" and ds.source == f"npz file {tmp_path / 'mnist.npz'}"
    assert ds.note == "auto: using mnist"
    _check_images(ds, 9, 4, (28, 28))


def test_auto_note_explains_skips(monkeypatch):
    real = data._load_cached
    reasons = {"mnist": "mnist not available: no network",
               "fashion_mnist": "x.gz is not an IDX file"}
    def fake(name, root):
        if name in reasons:
            raise DataError(reasons[name] + data._FIX + "how to fix")
        return real(name, root)
    monkeypatch.setattr(data, "_load_cached", fake)
    ds = load("auto")
    assert ds.name == "digits"
    assert ds.note == ("auto: mnist not available: no network; "
                       "fashion_mnist: x.gz is not an IDX file; using digits")
    monkeypatch.setattr(data, "AUTO_ORDER", ("mnist",))
    with pytest.raises(DataError, match="^auto: no dataset could be loaded: mnist not available"):
        load("auto")
