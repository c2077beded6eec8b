"""A results root of several result sets: finding them, what produced each, its raw data, the landing page.

A result set is a folder holding run files (`*.parquet`) directly: `results/quick/tf-2.21.0/`, say. Under a
root, every such folder (but depth scans and control runs, which belong to the set they are in) gets its report
at the same path in the site, and the site's index lists them with what the runs' metadata says produced them.
A set whose inputs (its files' content, the report's code and templates) did not change since the site was last
built is copied from it, not rendered again: SETS_FILE records each set's fingerprint.
"""

import gzip
import hashlib
import json
import os
import shlex
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from bench import closure, live, store
from bench.scenarios import SCENARIOS
from report import overview, publish, recurrent, summaries
from report.data import distinct
from report.render import TEMPLATES
from report.views import Link

SETS_FILE = "sets.json"  # at the root of a site of result sets: the sets, their fingerprints
SKIPPED = (store.SCAN_FOLDER, store.CONTROLS_FOLDER)  # parts of the set they are in, not sets
RESERVED = ("diff", "figures", "scenarios")  # site folders a set may not take
ARCHIVE_LIMIT = 10 * 2**20  # run and scan file bytes up to which a set's site carries them as a .tar.gz
# options of a recorded command that do not change a run's numbers (or name the folder, which is replaced)
DROPPED_OPTIONS = ("--results", "--shard", "--scheduler", "--workers")


@dataclass
class SetEntry:
    """One result set as the landing page lists it and its pages describe it."""

    path: str  # the set's folder under the root, and its report's folder in the site (posix)
    fingerprint: str
    runs: int  # run files in the folder
    shown: int  # runs the report shows (the rest set aside: another experiment, a second config of a cell)
    profile: str
    dataset: str
    tf_version: str
    keras_version: str
    device: str  # device name (kind)
    facts: list[tuple[str, str]]  # what produced it, in order
    archive: str = ""  # the raw data's .tar.gz, relative to the set's folder in the site; "" when too large
    archive_bytes: int = 0
    command: str = ""  # what regenerates the runs
    built_at: str = ""
    sweeping: str = ""  # while a sweep still trains the set (bench.live): how far it is
    diffs: list[Link] = field(default_factory=list)  # comparisons this set is in (filled for the landing page)

    @property
    def label(self) -> str:
        return f"{self.profile} · {self.dataset} · TF {self.tf_version} · {self.device}"


def is_root(folder: Path) -> bool:
    """Whether a results folder is a root of sets: a folder with no run files of its own."""
    return Path(folder).is_dir() and not any(Path(folder).glob("*.parquet"))


def discover(root: Path) -> list[Path]:
    """The folders under root that hold run files, in path order; not those inside a set, a scan or controls."""
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):  # a set may be a link to a folder elsewhere
        here = Path(os.path.realpath(folder))
        subfolders[:] = sorted(s for s in subfolders if not s.startswith(".") and s not in SKIPPED
                               and not here.is_relative_to(os.path.realpath(Path(folder, s))))  # no link loops
        if Path(folder) != Path(root) and any(f.endswith(".parquet") for f in files):
            found.append(Path(folder))
            subfolders[:] = []
    found = sorted(found, key=lambda f: f.relative_to(root).parts)
    for folder in found:
        if folder.relative_to(root).parts[0] in RESERVED:
            raise publish.SiteError(f"{folder}: a result set may not be named '{folder.relative_to(root).parts[0]}' "
                                    f"(the site uses that folder); rename it")
    return found


def first_run(folder: Path) -> dict | None:
    files = store.run_files(folder)
    try:
        return store.read_metadata(files[0]) if files else None
    except store.StoreError:  # a broken file: the set's build names it
        return None


def holds_own_models(folder: Path) -> bool:
    """A set of runs recorded from a user's fit (bench.recorder), judged by its first run file."""
    run = first_run(folder)
    return bool(run) and run.get("source") == "bench.recorder"


def catalogue_set(folders: list[Path]) -> Path | None:
    """The set a user's models are compared with: the first (in path order) whose first run is a catalogue
    scenario's, preferring the quick and full profiles (a control or smoke set compares less)."""
    catalogue = [(f, run) for f in folders if (run := first_run(f)) and run.get("scenario") in SCENARIOS
                 and run.get("source") != "bench.recorder"]
    preferred = [f for f, run in catalogue if run.get("profile") in ("quick", "full")]
    return (preferred or [f for f, _ in catalogue] or [None])[0]


def input_files(folder: Path) -> list[Path]:
    """The run files and depth scans a set's report reads (its control runs are read only by report diff)."""
    return [*store.run_files(folder), *store.run_files(folder / store.SCAN_FOLDER)]


def fingerprint(root: Path, folder: Path) -> str:
    """What a set's pages are computed from: the root as given (its command names it) and the set's path in it, its
    files' content, the report's code and templates."""
    digest = hashlib.sha256()
    digest.update(f"{root}\0{folder.relative_to(root).as_posix()}\0".encode())
    digest.update(closure.code_hash("report.site").encode())  # the build's code: summaries, pages, figures
    for path in sorted(TEMPLATES.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    files = input_files(folder)
    for path, content in zip(files, summaries.content_hashes(files), strict=True):
        digest.update(path.relative_to(folder).as_posix().encode() + content.encode())
    return digest.hexdigest()[:32]


def sweeping(folder: Path) -> str:
    """What the live sweeps of a set report (bench.live), as the set's pages say it; "" when none runs."""
    found = live.sweeps(folder)
    if not found:
        return ""
    done, total = sum(s.done for s in found), sum(s.total for s in found)
    who = "A sweep is" if len(found) == 1 else f"{len(found)} sweeps are"
    then = ("it is rebuilt as the sweep goes on" if any(s.rebuilding for s in found)
            else "build it again when the sweep ends")
    return (f"{who} still training this set: {done} of {total} runs done at {max(s.updated for s in found)}. "
            f"This report shows the runs stored then; {then}.")


def span(values: pd.Series) -> str:
    """The first and last of ISO times, to the minute."""
    found = sorted(str(v).replace("T", " ")[:16] for v in values.dropna() if str(v))
    return "not recorded" if not found else found[0] if found[0] == found[-1] else f"{found[0]} – {found[-1]}"


def device(runs: pd.DataFrame) -> str:
    return f"{distinct(runs, 'device')} ({distinct(runs, 'device_kind')})"


def commits(runs: pd.DataFrame) -> str:
    """The git commits the runs were trained at, short as git prints them (+dirty: with uncommitted changes)."""
    found = sorted({f"{c[:10]}{'+dirty' if c.endswith('+dirty') else ''}" for c in runs.get("git_commit", [])
                    if isinstance(c, str) and c})
    return ", ".join(found) or "not recorded"


def facts(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """What produced a set's runs, from their provenance metadata."""
    return [
        ("profile", distinct(runs, "profile")), ("dataset", distinct(images_dataset(runs), "dataset")),
        ("TensorFlow", distinct(runs, "tf_version")), ("Keras", distinct(runs, "keras_version")),
        ("Python", distinct(runs, "python_version")), ("device", device(runs)),
        ("gradbench", distinct(runs, "gradbench_version")), ("git commit", commits(runs)),
        ("measurement code", distinct(runs, "measurement_code")),
        ("trained (UTC)", span(runs.get("started_at", pd.Series(dtype=str)))),
    ]  # fmt: skip


def regenerate(runs: pd.DataFrame, results: str) -> str:
    """The sweep that trains these runs again into `results`: the options the runs recorded, without those that do
    not change a number, and the folder."""
    commands = runs.get("command", pd.Series(dtype=str)).dropna().astype(str)
    words = shlex.split(commands.mode().iloc[0]) if len(commands) else []
    words = words[words.index("sweep") + 1:] if "sweep" in words else []
    kept, skip = [], False
    for word in words:
        if not skip and word.split("=")[0] not in DROPPED_OPTIONS:
            kept.append(word)
        skip = word in DROPPED_OPTIONS
    for option, column in (("--profile", "profile"), ("--dataset", "dataset")):
        if option not in kept and column in runs:
            kept += [option, distinct(images_dataset(runs), column)]
    return shlex.join(["python", "-m", "bench", "sweep", *kept, "--results", results])


def images_dataset(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the set's dataset: not the recurrent nets', trained on their generated recall task."""
    feedforward = runs[~runs["scenario"].isin(recurrent.NAMES)]
    return feedforward if len(feedforward) else runs


def describe(root: Path, folder: Path, recorded: pd.DataFrame, runs: int, print_root: str) -> SetEntry:
    """A set's entry from its shown runs' metadata (`recorded`); `print_root`: the root as the user named it."""
    path = folder.relative_to(root).as_posix()
    dataset = distinct(images_dataset(recorded), "dataset")
    command = regenerate(recorded, f"{print_root.rstrip('/')}/{path}")
    if (folder / store.SCAN_FOLDER).is_dir():
        scan = ["python", "-m", "bench", "scan", "--profile", distinct(recorded, "profile"),
                "--dataset", dataset, "--results", f"{print_root.rstrip('/')}/{path}"]
        command += " && " + shlex.join(scan)
    return SetEntry(path, "", runs, len(recorded), distinct(recorded, "profile"), dataset,
                    distinct(recorded, "tf_version"), distinct(recorded, "keras_version"), device(recorded),
                    facts(recorded), command=command)


def archive_name(path: str) -> str:
    return path.replace("/", "-") + ".tar.gz"


def write_archive(root: Path, folder: Path, target: Path) -> int:
    """The set's run and scan files as a .tar.gz under their path in the root, the same bytes for the same files;
    returns its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in input_files(folder):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode = path.stat().st_size, 0o644
            with open(path, "rb") as data:
                tar.addfile(info, data)
    return target.stat().st_size


def add_raw_data(root: Path, folder: Path, entry: SetEntry, set_site: Path) -> None:
    """Put the set's files in its site as an archive if they are small enough; else its command is the way."""
    if sum(p.stat().st_size for p in input_files(folder)) <= ARCHIVE_LIMIT:
        entry.archive = archive_name(entry.path)
        entry.archive_bytes = write_archive(root, folder, set_site / entry.archive)


# -- the record of a built site ---------------------------------------------------------------------


def read_entries(site: Path) -> dict[str, SetEntry]:
    """The sets a site of sets was built from, by path; none for another site or a damaged record."""
    try:
        saved = json.loads((Path(site) / SETS_FILE).read_text(encoding="utf-8"))
        entries = [SetEntry(**{**e, "facts": [tuple(f) for f in e["facts"]], "diffs": []}) for e in saved["sets"]]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {e.path: e for e in entries}


def write_entries(site: Path, entries: list[SetEntry], results: str) -> None:
    saved = [{k: v for k, v in asdict(e).items() if k != "diffs"} for e in entries]
    text = json.dumps({"results": results, "sets": saved}, indent=1, sort_keys=True, ensure_ascii=False)
    (Path(site) / SETS_FILE).write_text(text + "\n", encoding="utf-8")


def is_sets_site(site: Path) -> bool:
    return (Path(site) / SETS_FILE).is_file()


# -- the landing page -----------------------------------------------------------------------------


@dataclass
class LandingPage:
    sets: list[SetEntry]
    diffs: list[Link]  # every comparison added to the site (report diff)
    benchmark: Link | None
    results: str  # the root as the build was given it

    @property
    def summary(self) -> str:  # what a link preview says of the page
        return f"{len(self.sets)} result set(s): " + "; ".join(s.label for s in self.sets)


def compares(page: publish.AddedPage, root: str, path: str) -> bool:
    """Whether a diff page compares the set at `path` of the root: a folder it names is the set's (as given, or
    resolved from here), or ends with the set's path."""
    parts = Path(path).parts
    return any(Path(source).resolve() == Path(root, path).resolve() or Path(source).parts[-len(parts):] == parts
               for source in page.sources)


def landing_page(site: Path) -> LandingPage:
    """The landing page of a site of sets, from its record and the pages other commands added to it."""
    saved = json.loads((Path(site) / SETS_FILE).read_text(encoding="utf-8"))
    entries = list(read_entries(site).values())
    diffs = [p for p in publish.added_pages(site) if p.kind == "diff"]
    for entry in entries:
        entry.diffs = [Link(p.path, p.title, p.summary) for p in diffs if compares(p, saved["results"], entry.path)]
    added = overview.added_pages(site)  # as a single report's index lists them
    return LandingPage(entries, added.diffs, added.benchmark, saved["results"])
