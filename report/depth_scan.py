"""The depth scan (bench/scan.py) against the mean-field theory: ratios, fits, model choice (the
figure is report/figures/scan.py).

Per scenario, the step-0 ratio r(L) = ‖δ first hidden‖ / ‖δ last hidden‖ over depths L = 1..64 and
seeds. Two one-parameter models, both through r(1) = 1, are fitted by least squares on log r over
every (depth, seed) point of depth ≥ 2 that float32 could measure (95 % intervals by resampling
whole seeds):
  exponential  log r = b · (L − 1)    a constant per-layer factor e^b
  power law    log r = a · log L      r = L^a
`flat` when the median ratio over seeds stays within FLAT_BAND of 1 at every depth; otherwise the
model with the smaller residual sum of squares (equal parameter counts, so this is also the BIC
choice). The theory's curve gets the same fit at the same depths, so the two factors compare like
for like.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import theory
from bench.scenarios import SCENARIOS
from report.grading.stats import delta_ratios, seed_band
from report.grading.verdicts import ratio_verdict

FLAT_BAND = 2.0  # flat: the median ratio stays within [1/2, 2] at every scanned depth
BOOTSTRAP = 200  # resamples of whole seeds for the fits' 95 % intervals (a seed's depths share weights)
MODEL_RULE = (
    f"flat if the median ratio over seeds stays within a factor {FLAT_BAND:g} of 1 at every scanned depth; "
    "otherwise the exponential (log r = b·(L−1)) or the power law (log r = a·log L), whichever leaves the "
    "smaller residual sum of squares on log r over every measured (depth, seed) point with L ≥ 2"
)


def ratios(scan: pd.DataFrame) -> pd.DataFrame:
    """scenario, depth, seed, ratio (1 at depth 1 by definition)."""
    return delta_ratios(scan, ("scenario", "depth", "seed"))


def measurable(ratio: pd.Series) -> pd.Series:
    return np.isfinite(ratio) & (ratio > 0)


def fit_through_origin(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, residual sum of squares) of y = slope · x by least squares."""
    if len(x) == 0 or not np.any(x):
        return np.nan, np.nan
    slope = float(np.dot(x, y) / np.dot(x, x))
    return slope, float(np.sum((y - slope * x) ** 2))


def slopes(depths: np.ndarray, logs: np.ndarray) -> tuple[float, float, float, float]:
    """(exponential slope b, its RSS, power-law exponent a, its RSS)."""
    b, rss_b = fit_through_origin(depths - 1, logs)
    a, rss_a = fit_through_origin(np.log(depths), logs)
    return b, rss_b, a, rss_a


def intervals(depths: np.ndarray, logs: np.ndarray, seeds: np.ndarray) -> tuple[tuple, tuple]:
    """95 % intervals of b and a from resampling whole seeds (fixed generator: the same data, the same bounds)."""
    names = np.unique(seeds)
    if len(names) < 2:
        return (np.nan, np.nan), (np.nan, np.nan)
    rng, draws = np.random.default_rng(0), []
    rows = {s: np.flatnonzero(seeds == s) for s in names}
    for _ in range(BOOTSTRAP):
        picked = np.concatenate([rows[s] for s in rng.choice(names, size=len(names))])
        b, _, a, _ = slopes(depths[picked], logs[picked])
        draws.append((b, a))
    low, high = np.nanpercentile(np.array(draws), [2.5, 97.5], axis=0)
    return (low[0], high[0]), (low[1], high[1])


@dataclass(frozen=True)
class Model:
    """Which law a ratio-against-depth curve follows, with both fits."""

    model: str  # flat | exponential | power law | n/a
    factor: float  # per-layer factor e^b of the exponential fit
    factor_low: float
    factor_high: float
    exponent: float  # a of the power-law fit
    exponent_low: float
    exponent_high: float
    points: int  # measured points used
    unmeasurable: int  # points whose ratio float32 could not hold (0 or inf)


def choose(depths: np.ndarray, values: np.ndarray, seeds: np.ndarray | None = None) -> Model:
    """Fit both models to log ratio against depth (every seed a point) and choose, by MODEL_RULE."""
    good = measurable(pd.Series(values)).to_numpy()
    ok = good & (depths >= 2)
    d, y = depths[ok].astype(float), np.log(values[ok])
    b, rss_b, a, rss_a = slopes(d, y)
    if not ok.any():
        model = "n/a"
    elif (pd.Series(y).groupby(d).median().abs() <= np.log(FLAT_BAND)).all():
        model = "flat"
    else:
        model = "exponential" if rss_b <= rss_a else "power law"
    (b_low, b_high), (a_low, a_high) = intervals(d, y, seeds[ok]) if seeds is not None else ((b, b), (a, a))
    return Model(model, *np.exp([b, b_low, b_high]), a, a_low, a_high, int(ok.sum()),
                 int(((depths >= 2) & ~good).sum()))


@dataclass(frozen=True)
class ScanRow:
    """One scenario of the scan: measured and predicted laws side by side."""

    scenario: str
    shared_by: tuple[str, ...]  # scenarios with the same step-0 network
    measured: Model
    theory: Model | None
    theory_note: str | None  # why the theory does not apply
    max_ratio_error: float  # largest max(measured/theory, theory/measured) over depths, medians over seeds
    onset: str  # where the verdict rules start to grade the step-0 ratio vanishing or exploding
    theory_onset: str | None  # the same rules on the theory's ratio at the same depths


def theory_curves(meta: dict, names: list[str], max_depth: int) -> pd.DataFrame:
    """scenario, depth, ratio: the mean-field prediction at every depth 1..max_depth where the theory applies."""
    rows = []
    for name in names:
        scenario = SCENARIOS.get(name)
        if scenario is None or theory.applies(scenario.__dict__) is not None:
            continue
        curve = theory.delta_ratio_curve(
            scenario.activation, max_depth, int(meta.get("width") or scenario.width), int(meta["input_features"]),
            float(meta["input_mean_square"]), scenario.initializer, scenario.init_std,
        )  # fmt: skip
        rows += [{"scenario": name, "depth": depth, "ratio": r} for depth, r in enumerate(curve, start=1)]
    return pd.DataFrame(rows, columns=["scenario", "depth", "ratio"])


def theory_note(name: str) -> str | None:
    return theory.applies(SCENARIOS[name].__dict__) if name in SCENARIOS else "not in the catalogue"


def bands(measured: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and depth: median, min, max of the measurable ratios and how many were not."""
    usable = measured.assign(ratio=measured["ratio"].where(measured["ratio"] > 0))  # 0: below float32's range
    band = seed_band(usable, "depth", "ratio", ["scenario"])
    return band.rename(columns={"n_nonfinite": "n_unmeasurable"})


def worst_ratio_error(band: pd.DataFrame, curve: pd.DataFrame) -> float:
    joined = band.merge(curve, on=["scenario", "depth"])
    joined = joined[(joined["depth"] >= 2) & measurable(joined["median"]) & measurable(joined["ratio"])]
    if joined.empty:
        return np.nan
    error = joined["median"] / joined["ratio"]
    return float(np.maximum(error, 1 / error).max())


def verdict_ratios(scan: pd.DataFrame) -> pd.DataFrame:
    """The whole-path ratio the verdicts read, per scenario, depth and seed: ‖δ‖'s, or for a batch-norm network
    ‖∂L/∂W‖'s — at initialisation that is the scale-free ‖∂L/∂W‖·‖W‖ ratio, He-normal kernels of equal fan-out
    having equal expected norms."""
    normed = [name for name in scan["scenario"].unique() if getattr(SCENARIOS.get(name), "batch_norm", False)]
    rows = scan.assign(delta_norm=scan["delta_norm"].where(~scan["scenario"].isin(normed), scan["kernel_grad_norm"]))
    return ratios(rows)


def onset(depths, values) -> str:
    """The first depth whose (median) ratio the verdict rules grade vanishing or exploding; 0 and inf count."""
    for depth, value in zip(depths, values):
        found = ratio_verdict(value)
        if found:
            return f"{found} from depth {int(depth)}"
    return "healthy at every depth"


def table(scan: pd.DataFrame, meta: dict) -> tuple[list[ScanRow], pd.DataFrame]:
    """Every scanned scenario's row, and the figure's data (measured bands and theory curves)."""
    measured = ratios(scan)
    names = list(dict.fromkeys(scan["scenario"]))
    depths = sorted(measured["depth"].unique())
    curves = theory_curves(meta, names, int(max(depths)))
    band = bands(measured)
    graded = verdict_ratios(scan).groupby(["scenario", "depth"])["ratio"].median().reset_index()
    rows = []
    for name in names:
        mine = measured[measured["scenario"] == name]
        curve = curves[curves["scenario"] == name]
        at_scan = curve[curve["depth"].isin(depths)]
        rows.append(ScanRow(
            scenario=name, shared_by=tuple(meta.get("shared_by", {}).get(name, [name])),
            measured=choose(mine["depth"].to_numpy(), mine["ratio"].to_numpy(), mine["seed"].to_numpy()),
            theory=choose(at_scan["depth"].to_numpy(), at_scan["ratio"].to_numpy()) if len(curve) else None,
            theory_note=theory_note(name),
            max_ratio_error=worst_ratio_error(band[band["scenario"] == name], curve),
            onset=onset(*graded[graded["scenario"] == name][["depth", "ratio"]].to_numpy().T),
            theory_onset=onset(at_scan["depth"], at_scan["ratio"]) if len(curve) else None,
        ))  # fmt: skip
    data = pd.concat(
        [band.assign(source="measured"),
         curves.rename(columns={"ratio": "median"}).assign(source="theory")],
        ignore_index=True,
    )[["scenario", "source", "depth", "median", "min", "max", "n", "n_unmeasurable"]]  # fmt: skip
    return rows, data

