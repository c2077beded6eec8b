"""Datasets for gradbench: MNIST, Fashion-MNIST, scikit-learn digits and a synthetic set.

`load(name)` returns a `Dataset` of float32 images (n, H, W, 1) in [0, 1] and int32 labels.
MNIST / Fashion-MNIST come from a local folder (IDX or Keras .npz files), Debian's
dataset-fashion-mnist package, or Keras's own download/cache; failures raise a one-line
`DataError` saying how to provide the data. Nothing is ever substituted silently.
"""
from __future__ import annotations

import functools
import gzip
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench import console
from bench.errors import UserError, one_line

CLASSES = 10  # MNIST, Fashion-MNIST and digits
DATASETS = ("mnist", "fashion_mnist", "digits", "synthetic")
AUTO_ORDER = ("mnist", "fashion_mnist", "digits")
DATA_DIR_ENV = "GRADBENCH_DATA_DIR"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT = 20.0  # seconds per socket operation during a Keras download
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NPZ_NAMES = {"mnist": ("mnist.npz",), "fashion_mnist": ("fashion_mnist.npz", "fashion-mnist.npz")}
_FIX = "; to fix: "  # separates what went wrong from how to fix it in DataError messages

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


RECALL = "recall"  # the recurrent networks' task, generated at any length: every folder's, whatever its images


class DataError(UserError):
    """A user-facing problem: message is one line saying what is wrong and how to fix it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    note: str = ""

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))


def load(name: str, data_dir: str | Path | None = None,
         train_samples: int | None = None, test_samples: int | None = None) -> Dataset:
    """Load dataset `name` (or "auto"); `*_samples` keep the first n samples (None = all)."""
    for n in (train_samples, test_samples):
        if n is not None and n < 1:
            raise DataError(f"sample counts must be positive, got {n}")
    if name == "auto":
        return _load_auto(data_dir, train_samples, test_samples)
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; valid: auto, {', '.join(DATASETS)}")
    _resolve_dir(data_dir)  # a bad data dir is an error even for a dataset that does not read one
    if name == "synthetic":
        arrays = _synthetic(train_samples or 2048, test_samples or 512)
        return _dataset(name, "generated (seed 0)", arrays, None, None)
    root = _resolve_dir(data_dir) if name != "digits" else None
    arrays, source = _load_cached(name, root)
    return _dataset(name, source, arrays, train_samples, test_samples)


RECALL_SYMBOLS = 4  # the recall task's alphabet: chance accuracy is 1/4
RECALL_SEED = 0


def recall(length: int, train_samples: int, test_samples: int) -> Dataset:
    """The first-symbol recall task at sequence length T (a long-range dependency that needs no download).

    Each sequence is T one-hot symbols drawn uniformly from RECALL_SYMBOLS; the first step also sets a
    start flag (the last input feature). The label is the first symbol: the other T − 1 are distractors,
    so a network must carry one step's information across T − 1 steps. Deterministic from RECALL_SEED
    and T; chance accuracy is 1 / RECALL_SYMBOLS."""
    train_seq, test_seq = np.random.SeedSequence([RECALL_SEED, length]).spawn(2)

    def make(seq, n):
        symbols = np.random.default_rng(seq).integers(0, RECALL_SYMBOLS, (n, length))
        x = np.zeros((n, length, RECALL_SYMBOLS + 1), np.float32)
        x[np.arange(n)[:, None], np.arange(length)[None], symbols] = 1.0
        x[:, 0, RECALL_SYMBOLS] = 1.0
        return x, symbols[:, 0].astype(np.int32)

    source = f"generated (seed {RECALL_SEED}): recall the first of T = {length} symbols from {RECALL_SYMBOLS}"
    return Dataset(RECALL, source, *make(train_seq, train_samples), *make(test_seq, test_samples),
                   num_classes=RECALL_SYMBOLS)


def _load_auto(data_dir, train_samples, test_samples) -> Dataset:
    """First dataset of AUTO_ORDER that loads; the note says why earlier ones were skipped."""
    _resolve_dir(data_dir)  # a bad explicit data dir is an error, not a reason to skip
    skipped = []
    for name in AUTO_ORDER:
        try:
            ds = load(name, data_dir, train_samples, test_samples)
        except DataError as e:
            reason = str(e).split(_FIX)[0]
            skipped.append(reason if reason.startswith(name) else f"{name}: {reason}")
            continue
        return replace(ds, note="auto: " + "; ".join(skipped + [f"using {name}"]))
    raise DataError("auto: no dataset could be loaded: " + "; ".join(skipped))


def _dataset(name: str, source: str, arrays: Arrays, ntr: int | None, nte: int | None) -> Dataset:
    """Wrap (read-only) arrays, keeping the first ntr / nte samples."""
    xtr, ytr, xte, yte = arrays
    return Dataset(name, source, xtr[:ntr], ytr[:ntr], xte[:nte], yte[:nte], num_classes=CLASSES)


def _resolve_dir(data_dir: str | Path | None) -> str | None:
    """The explicit data dir (argument, else $GRADBENCH_DATA_DIR), checked; None if unset."""
    given = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    if given is None:
        return None
    path = Path(given).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"data dir {path} does not exist or is not a directory{_FIX}"
                        f"pass an existing folder with --data-dir or {DATA_DIR_ENV}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(f"data dir {path} is not readable{_FIX}check its permissions")
    return str(path)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, root: str | None) -> tuple[Arrays, str]:
    """Full arrays of a real dataset, loaded once per process per (name, data dir)."""
    if name == "digits":
        return _digits(), "scikit-learn bundled digits"
    tried = []
    for folder in _folders(name, root):
        found = _from_folder(name, folder)
        if found:
            return found
        tried.append(str(folder))
    return _from_keras(name, tried)


def _folders(name: str, root: str | None) -> list[Path]:
    """Local folders to search, most specific first."""
    folders = []
    if root:
        base = Path(root)
        subs = [name, name.replace("_", "-")]
        folders = [base / s for s in dict.fromkeys(subs)]
        if not _named_for_other(name, base.name.lower()):
            folders.append(base)
    if name == "fashion_mnist":
        folders.append(DEBIAN_FASHION_DIR)
    return [f for f in folders if f.is_dir()]


def _named_for_other(name: str, folder_name: str) -> bool:
    """IDX file names are shared, so skip a folder named for the other dataset."""
    fashion = "fashion" in folder_name
    return fashion if name == "mnist" else ("mnist" in folder_name and not fashion)


def _from_folder(name: str, folder: Path) -> tuple[Arrays, str] | None:
    """Arrays from a folder of IDX files (gzipped or not) or a Keras .npz; None if absent."""
    paths = [next((p for p in (folder / (f + ".gz"), folder / f) if p.is_file()), None)
             for f in IDX_FILES]
    if all(paths):
        xtr, ytr, xte, yte = (read_idx(p) for p in paths)
        return _prepare(xtr, ytr, xte, yte, 255.0, str(folder)), f"idx files in {folder}"
    for npz in (folder / n for n in NPZ_NAMES[name]):
        if npz.is_file():
            return _read_npz(npz), f"npz file {npz}"
    return None


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (magic 0x00000801 / 0x00000803)."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}{_FIX}replace the file") from None
    if len(raw) < 8 or raw[:3] != b"\x00\x00\x08" or raw[3] not in (1, 3):
        raise DataError(f"{path} is not an IDX file (bad magic number){_FIX}replace the file")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", raw[3], 4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3])
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated or corrupt (header says {dims})"
                        f"{_FIX}replace the file")
    return data.reshape(dims)


def _read_npz(path: Path) -> Arrays:
    """Arrays from a Keras-style .npz with x_train, y_train, x_test, y_test."""
    try:
        with np.load(path, allow_pickle=False) as f:
            xtr, ytr, xte, yte = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except Exception as e:  # zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError
        raise DataError(f"cannot read {path}: {one_line(e)}{_FIX}replace the file") from None
    return _prepare(xtr, ytr, xte, yte, 255.0, str(path))


def _from_keras(name: str, tried: list[str]) -> tuple[Arrays, str]:
    """Keras's own loader (cache ~/.keras/datasets, else download), with a socket timeout."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        import keras
        with console.prints_hidden():  # "Downloading data from …", shown with --verbose
            (xtr, ytr), (xte, yte) = getattr(keras.datasets, name).load_data()
    except Exception as e:
        where = f"not in {', '.join(tried)}, " if tried else ""
        raise DataError(f"{name} not available: {where}keras loader failed: {one_line(e)}"
                        f"{_FIX}{_how_to(name)}") from None
    finally:
        socket.setdefaulttimeout(old)
    cache = Path(os.environ.get("KERAS_HOME", "~/.keras"), "datasets",
                 "mnist.npz" if name == "mnist" else "fashion-mnist")
    return _prepare(xtr, ytr, xte, yte, 255.0, "keras"), f"keras download/cache {cache}"


def _how_to(name: str) -> str:
    files = "IDX .gz or " + " / ".join(NPZ_NAMES[name]) + " files"
    apt = "apt-get install dataset-fashion-mnist, or " if name == "fashion_mnist" else ""
    return (f"use --data-dir DIR or {DATA_DIR_ENV}=DIR with {files}, or {apt}"
            f"a network connection so Keras can download to ~/.keras/datasets")


def _prepare(xtr, ytr, xte, yte, scale: float, origin: str) -> Arrays:
    """Validate shapes; float32 (n, H, W, 1) images in [0, 1], int32 labels; read-only."""
    for x, y in ((xtr, ytr), (xte, yte)):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{origin}: unexpected shapes {x.shape} / {y.shape}"
                            f"{_FIX}replace the files")
        if not len(y):
            raise DataError(f"{origin}: holds no {'training' if y is ytr else 'test'} samples, nothing to train or "
                            f"test on{_FIX}replace the files")
        if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all():
            raise DataError(f"{origin}: {np.count_nonzero(~np.isfinite(x))} pixel values are NaN or infinite, "
                            f"images must be finite numbers{_FIX}replace the files")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= CLASSES:
            raise DataError(f"{origin}: labels must be whole numbers 0-{CLASSES - 1}, found "
                            f"{y.dtype} values {y.min()}..{y.max()}{_FIX}replace the files")
    out = (xtr.astype(np.float32)[..., None] / np.float32(scale), ytr.astype(np.int32),
           xte.astype(np.float32)[..., None] / np.float32(scale), yte.astype(np.int32))
    for a in out:
        a.setflags(write=False)
    return out


def _digits() -> Arrays:
    """scikit-learn's 8x8 digits (values 0..16): first 1437 train, last 360 test."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = d.images, d.target
    return _prepare(x[:1437], y[:1437], x[1437:], y[1437:], 16.0, "sklearn digits")


def _synthetic(n_train: int, n_test: int) -> Arrays:
    """10 fixed random 8x8 prototypes plus Gaussian noise, clipped to [0, 1]; seed 0.

    Noisy enough not to saturate: a 64-32-10 relu MLP with Adam gets ~73% after 3 epochs."""
    proto_seq, train_seq, test_seq = np.random.SeedSequence(0).spawn(3)
    protos = 0.2 + 0.6 * np.random.default_rng(proto_seq).random((10, 8, 8))
    def make(seq, n):
        rng = np.random.default_rng(seq)
        y = rng.integers(0, 10, n)
        return np.clip(protos[y] + rng.normal(0.0, 0.35, (n, 8, 8)), 0.0, 1.0), y
    return _prepare(*make(train_seq, n_train), *make(test_seq, n_test), 1.0, "synthetic")
