"""The noise floor of a version diff, measured by control runs.

A control run (`python -m bench sweep --control init_ulp`, stored in `<results>/controls/`) is a
run trained again with each initial weight one ulp apart: a change that means nothing, of the size
of a last-bit rounding difference. How far it moves a metric is how far chaos alone moves it. For
each seed and metric, the floor is the larger of the sides' |control − run| / max(|control|, |run|)
(the diff's own measure of change); a cell's floor is the largest over its seeds. A version
change is then "within the floor" or "k× beyond it", k = median over seeds of change / floor.
"""

import numpy as np
import pandas as pd

from bench import store
from report import diff

VALUE_KEYS = ["scenario", "depth", "metric", "layer"]
MIN_SEEDS_FOR_TEST = 6  # an exact sign test reaches p < 0.05 from 6 seeds all beyond their floor


def control_side(side: diff.Side, map_=map) -> diff.Side | None:
    """The control runs stored with a side's runs, or None."""
    folder = side.folder / store.CONTROLS_FOLDER
    if not store.run_files(folder):
        return None
    return diff.load_side(folder, f"the controls of {side.folder}", map_)


def deviations(side: diff.Side, controls: diff.Side) -> pd.DataFrame:
    """Per run of the side that has a control: scenario, depth, seed, metric, layer, rel (control vs run)."""
    pairs, _ = diff.pair_runs(side, controls)
    return diff.paired_values(pairs, side, controls)[[*VALUE_KEYS, "seed", "rel"]]


def seed_floors(result: diff.Diff, map_=map) -> tuple[pd.DataFrame, list[str]]:
    """(per cell × metric × layer × seed: floor; the folders whose controls measured it)."""
    measured = [(side, controls) for side in (result.a, result.b)
                if (controls := control_side(side, map_)) is not None]
    if not measured:
        return pd.DataFrame(columns=[*VALUE_KEYS, "seed", "floor"]), []
    found = pd.concat([deviations(side, controls) for side, controls in measured], ignore_index=True)
    floors = found.groupby([*VALUE_KEYS, "seed"], sort=False)["rel"].max().rename("floor").reset_index()
    return floors, [str(side.folder) for side, _ in measured]


def beyond_factor(change: pd.Series, floor: pd.Series) -> pd.Series:
    """change / floor: 0 when unchanged, inf beyond a zero floor, nan without a floor."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = change / floor
    return factor.where(change > 0, 0.0).where(floor.notna())


def floor_test(rows: pd.DataFrame) -> str:
    """An exact sign test of a seed's change against its own control's move, or why there is none."""
    rows = rows.dropna(subset=["seed_floor"])
    moved = rows[rows["rel"] != rows["seed_floor"]]
    higher, n = int((moved["rel"] > moved["seed_floor"]).sum()), len(moved)
    if len(rows) < MIN_SEEDS_FOR_TEST:  # the significance column says the seeds are too few
        return ""
    if n == 0 or diff.sign_test(n, n) >= diff.ALPHA:
        return f"{n} of {len(rows)} seeds differ from their control: cannot be significant"
    return f"sign test p={diff.sign_test(higher, n):.2g}, beyond its control on {higher}/{n}"


def status(rel: float, floor: float, equal: bool) -> str:
    """One seed's (or a cell's median) change against the floor, in words."""
    if equal:
        return "bit-identical"
    if np.isnan(floor):
        return "no control"
    if rel <= floor:
        return "within the floor"
    return "beyond a zero floor" if floor == 0 else f"{diff.times(rel / floor)} beyond the floor"


def cell_floors(values: pd.DataFrame) -> pd.DataFrame:
    """Per cell × metric × layer: the floor, the median factor beyond it, seeds beyond, the test, seed statuses."""
    rows = []
    for key, group in values.sort_values("seed").groupby(VALUE_KEYS, sort=False):
        floor = group["floor"].iloc[0]
        rows.append({
            **dict(zip(VALUE_KEYS, key)), "floor": floor,
            "beyond": beyond_factor(group["rel"], group["floor"]).median(),
            "seeds_beyond": int((group["rel"] > floor).sum()), "floor_test": floor_test(group),
            "seed_status": list(group["versus_floor"]),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=[*VALUE_KEYS, *FLOOR_COLUMNS])


FLOOR_COLUMNS = ["floor", "beyond", "seeds_beyond", "floor_test", "seed_status"]


def attach(result: diff.Diff, map_=map) -> diff.Diff:
    """Add the floor to a diff: per pair the seed's floor and status, per metric row the cell's floor."""
    floors, sources = seed_floors(result, map_)
    values = result.values.merge(floors.rename(columns={"floor": "seed_floor"}), on=[*VALUE_KEYS, "seed"],
                                 how="left")
    values["floor"] = values.groupby(VALUE_KEYS, sort=False)["seed_floor"].transform("max")
    values["versus_floor"] = [status(r, f, e) for r, f, e in zip(values["rel"], values["floor"], values["equal"])]
    result.values = values
    result.metrics = result.metrics.merge(cell_floors(values), on=VALUE_KEYS, how="left")
    result.floor_sources = sources
    return result


def compare(folder_a, folder_b, map_=map) -> diff.Diff:
    """diff.compare with the floor of whichever sides have controls (map_: how run files are summarised)."""
    return attach(diff.compare(folder_a, folder_b, map_), map_)


def beyond(result: diff.Diff, factor: float) -> list[str]:
    """The whole-run metrics of cells whose median change is more than `factor` × their floor."""
    if not result.floor_sources:
        raise diff.DiffError(
            f"--fail-beyond-floor needs control runs beside {result.a.folder} or {result.b.folder}: "
            f"python -m bench sweep --results {result.b.folder} --control init_ulp (under that folder's TensorFlow)")
    rows = result.metrics[(result.metrics["layer"] == "") & (result.metrics["beyond"] > factor)]
    return [f"{r.scenario} depth {r.depth}: {diff.ALL_METRICS[r.metric].label} changed {diff.change_size(r.change)}, "
            f"{diff.times(r.beyond)} its floor {diff.change_size(r.floor)}" for r in rows.itertuples()]
