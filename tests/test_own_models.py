"""The Your-models page: a user's recorded model beside the catalogue's runs, in one site of result sets."""

import re
import shutil

import keras
import numpy as np
import pytest

from bench import store
from bench.recorder import Recorder
from report import site


def record_sigmoid_stack(folder):
    """Six sigmoid layers of 32 (Glorot): ‖δ‖ shrinks about 4× a layer, so the first gets ~10⁻³ of the last's."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 12)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((12,)), *(keras.layers.Dense(32, activation="sigmoid") for _ in range(6)),
                              keras.layers.Dense(2)], name="deep_sigmoid")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    recorder = Recorder(folder, every=1)
    model.fit(x, y, epochs=1, batch_size=32, validation_split=0.25, verbose=0, callbacks=[recorder])
    return recorder


@pytest.fixture(scope="module")
def sets_root(tiny_results, tmp_path_factory):
    """results/catalogue: the tiny sweep's runs (sigmoid, relu_he_bn, linear at depth 2); results/mine: one fit."""
    root = tmp_path_factory.mktemp("own") / "results"
    (root / "catalogue").mkdir(parents=True)
    for path in store.run_files(tiny_results):
        shutil.copy2(path, root / "catalogue" / path.name)
    recorder = record_sigmoid_stack(root / "mine")
    return root, recorder


def lost_most(recorder) -> str:
    """The hidden layer going into which ‖δ‖ shrinks most: median over steps of ‖δ_l‖ / ‖δ_l+1‖, by hand."""
    layer = recorder.tables["layer"]
    hidden = layer[layer["layer_role"] == "hidden"].pivot(index="step", columns="layer", values="delta_norm")
    factors = (hidden.iloc[:, :-1].to_numpy() / hidden.iloc[:, 1:].to_numpy())
    names = layer.drop_duplicates("layer").set_index("layer")["layer_name"]
    return names[int(np.argmin(np.median(factors, axis=0)))]


def test_the_models_page_names_the_layer_and_the_catalogues_fix(sets_root, tmp_path):
    root, recorder = sets_root
    out = tmp_path / "site"
    said = []
    site.build(root, out, built_at="2026-01-01 00:00 UTC", say=said.append)
    page = (out / "mine" / "models.html").read_text(encoding="utf-8")
    assert not (out / "catalogue" / "models.html").exists()
    assert 'href="models.html"' in (out / "mine" / "index.html").read_text(encoding="utf-8")
    assert "Not in these results" not in (out / "mine" / "index.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", page)
    assert "vanishing" in text and f"back into\n{lost_most(recorder)}: ×" in text
    # the nearest problem cell is sigmoid at depth 2, whose phenomenon's fix relu_he_bn was swept there
    assert "nearest to sigmoid at depth 2" in " ".join(text.split())
    links = re.findall(r'href="(\.\./catalogue/scenarios/[^"]+)"', page)
    assert "../catalogue/scenarios/relu_he_bn.html" in links
    assert all((out / "mine" / link).resolve().is_file() for link in links)
    # the catalogue is an input of the models page: a change to it renders the set again
    next(iter(sorted((root / "catalogue").glob("linear-*.parquet")))).unlink()
    said.clear()
    site.build(root, out, built_at="2026-01-01 00:00 UTC", say=said.append)
    assert said == ["catalogue: rendered", "mine: rendered"]


def test_without_a_catalogue_the_page_says_how_to_get_one(sets_root, tmp_path):
    root, _ = sets_root
    out = site.build(root / "mine", tmp_path / "site").parent
    text = " ".join(re.sub(r"<[^>]+>", "", (out / "models.html").read_text(encoding="utf-8")).split())
    assert "This site holds no catalogue runs to compare with" in text and "deep_sigmoid" in text
