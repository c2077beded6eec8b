"""Several result sets in order, e.g. TF 2.15.1 → 2.18.1 → 2.21.0: each cell's metrics across them and the
version at which each change first appeared (`python -m report diff A B C …`).

The matrix is the chain of consecutive diffs (floor.compare); a metric "first differs" at the first version
whose numbers are not those of the one before, and is "first beyond the floor" at the first version that
moves it further than its control runs moved it.
"""

from dataclasses import dataclass

import pandas as pd

from bench.scenarios import SCENARIOS
from report import diff

METRICS = ("final_test_accuracy", "final_test_loss", "grad_norm_max", "delta_ratio_init", "step0_loss")
MARKS = {"bit-identical": "=", "within the floor": "≈", "no control": "≠"}  # else "k×", beyond the floor


def mark(step: str) -> str:
    """A step's change against the floor as one symbol: =, ≈, ≠ (changed, no floor to hold it to) or k×."""
    if step.startswith("within"):
        return MARKS["within the floor"]
    if "beyond" in step:
        return "> 0" if "zero floor" in step else step.split(" ")[0]
    return MARKS[step]


@dataclass(frozen=True)
class MatrixRow:
    scenario: str
    depth: int
    metric: str
    medians: tuple[str, ...]  # per version, median over seeds (of the pairs of the diff that reaches it)
    steps: tuple[str, ...]  # per consecutive pair: the change against the floor (diff.versus_floor)
    marks: tuple[str, ...]  # the same in a symbol (MARKS)
    first_differs: str  # the version at which the numbers first differ, or "—"
    first_beyond: str  # the version at which the change first goes beyond the floor, or "—"


@dataclass
class MatrixPage:
    entry: diff.DiffEntry
    names: list[str]  # each side's folder name, in order
    versions: list[str]  # each side's name and versions
    links: list[tuple[str, str]]  # (text, href relative to the matrix page) of each consecutive diff page
    rows: list[MatrixRow]
    firsts: list[tuple[str, int, int]]  # per later version: cells whose numbers first differ / first go beyond
    floor_from: list[str]
    verdict_changes: list[str]  # "at <set>: <cell>: <verdict> → <verdict>"

    @property
    def summary(self) -> str:  # what a link preview says of the page (render.description)
        return self.entry.summary


def first_version(flags: list[bool], names: list[str]) -> str:
    """The version (names[i + 1]) of the first consecutive pair whose flag is set, or —."""
    return next((names[i + 1] for i, flag in enumerate(flags) if flag), "—")


def metric_rows(diffs: list[diff.Diff]) -> pd.DataFrame:
    """Whole-run METRICS rows of every diff side by side, by (scenario, depth, metric): s{i}_<column> is diff i's."""
    frames = []
    for i, d in enumerate(diffs):
        rows = d.metrics[(d.metrics["layer"] == "") & d.metrics["metric"].isin(METRICS)]
        frames.append(rows.set_index(["scenario", "depth", "metric"]).add_prefix(f"s{i}_"))
    return pd.concat(frames, axis=1, join="inner")


def row_of(key: tuple, row: pd.Series, count: int, names: list[str]) -> MatrixRow:
    steps = [pd.Series({c[len(f"s{i}_"):]: v for c, v in row.items() if c.startswith(f"s{i}_")})
             for i in range(count)]
    medians = [steps[0]["median_a"], *(s["median_b"] for s in steps)]
    differs = [s["differ"] > 0 for s in steps]
    beyond = [s["differ"] > 0 and s["beyond"] > 1 for s in steps]
    scenario, depth, metric = key
    texts = tuple(diff.versus_floor(s) for s in steps)
    return MatrixRow(scenario, int(depth), diff.ALL_METRICS[metric].label, tuple(diff.number(m) for m in medians),
                     texts, tuple(map(mark, texts)), first_version(differs, names), first_version(beyond, names))


def matrix_page(diffs: list[diff.Diff], pages: list[diff.DiffPage]) -> MatrixPage:
    sides = [diffs[0].a, *(d.b for d in diffs)]
    names = [side.name for side in sides]
    table = metric_rows(diffs)
    order = {name: i for i, name in enumerate(SCENARIOS)}
    keys = sorted(table.index, key=lambda k: (order.get(k[0], len(order)), k[0], k[1], METRICS.index(k[2])))
    rows = [row_of(key, table.loc[key], len(diffs), names) for key in keys]
    firsts = []
    for name in names[1:]:
        cells_differ = {(r.scenario, r.depth) for r in rows if r.first_differs == name}
        cells_beyond = {(r.scenario, r.depth) for r in rows if r.first_beyond == name}
        firsts.append((name, len(cells_differ), len(cells_beyond)))
    entry = diff.DiffEntry("__".join(diff.slug(n) for n in names), " → ".join(names), "",
                           f"{len({(r.scenario, r.depth) for r in rows})} cells across {len(names)} result sets: "
                           + "; ".join(f"{n}: {b} cells first beyond the floor" for n, _, b in firsts))
    links = [(f"{p.entry.a} → {p.entry.b}", f"{p.entry.name}.html") for p in pages]
    sources = sorted({f for d in diffs for f in d.floor_sources})
    verdicts = [f"at {d.b.name}: {change}" for d in diffs for change in d.verdict_changes()]
    return MatrixPage(entry, names, [f"{side.name}: {side.versions()}" for side in sides], links, rows, firsts,
                      sources, verdicts)


def terminal_text(page: MatrixPage) -> str:
    lines = [f"matrix {page.entry.a}", *(f"  {v}" for v in page.versions)]
    lines += [f"  at {name}: {differ} cells' numbers first differ, {beyond} first go beyond the floor"
              for name, differ, beyond in page.firsts]
    header = ("scenario", "depth", "metric", *page.names, "first differs", "first beyond floor")
    body = [(r.scenario, str(r.depth), r.metric, *r.medians, r.first_differs, r.first_beyond)
            for r in page.rows if r.first_beyond != "—"]
    if body:
        numeric = set(range(1, 3 + len(page.names))) - {2}  # depth and the medians
        lines += ["", "metrics whose change goes beyond the floor:", *diff.columns([header, *body], numeric)]
    return "\n".join(lines)
