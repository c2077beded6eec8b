"""The static site (issue 3): every page's data, computed one page at a time, rendered and published.

Computing never writes HTML and rendering never touches a DataFrame (coverage.py's HTML report works
the same way): the page data are plain dataclasses (data, views, phenomena, article, scenario_pages,
overview), render.py renders them, publish.py writes the folder. Figures are saved while their
page's data is computed (figure_cache.py), drawn by worker processes; templates only reference them.
The output is deterministic: the same results give the same bytes, except the one "Built at" line of
each page. A build first summarises the folder's run files in worker processes (summaries.py, cached by
content), then computes the pages from those summaries and the few files each figure draws.
"""

import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from bench import store
from bench.errors import held_signals
from report import diff, figures, matrix, own_models, publish, sets
from report.data import Data, load
from report.figure_cache import Shelf, start_worker
from report.overview import refresh_index
from report.pages import ADDED, added_page, pages
from report.render import Page, environment, page_stamp, render
from report.views import cell_views

MAX_WORKERS = 4  # processes drawing figures
WORKER_MODULES = ["report.figure_cache", "report.figures", "report.summaries"]  # what the workers run
DIFF_FOLDER = "diff"  # <site>/diff/<A>__<B>.html
PAGES_FILE = "pages.json"  # each page's stamp: a rebuild renders only the pages whose stamp changed

__all__ = ["build", "load", "write_diff", "write_matrix"]


def workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@contextmanager
def worker_pool():
    """Worker processes (that summarise run files, or draw figures); on Ctrl-C or an error, only the tasks running
    are waited for."""
    # no fork of a process that runs arrow's threads: workers are forked from a fork server, a fresh process that
    # imports what they run once (for all the pools of this process), not each worker again as spawned ones do
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    pool = ProcessPoolExecutor(workers(), mp_context=context, initializer=start_worker, initargs=(os.getpid(),))
    try:
        # every worker started at once (a task each) and not cut in half by Ctrl-C: a worker started while this
        # process unwinds is one the pool does not know, does not wait for, and that prints a traceback once
        # this process has exited and its queue's semaphore with it
        with held_signals():
            for _ in range(workers()):
                pool.submit(int)
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_pages(data: Data, root: Path, built_at: str, previous: Path | None = None, home: str = "",
                result_set: sets.SetEntry | None = None, sweeping: str = "") -> None:
    """Every page into root (home, result_set, sweeping: see render.render). A page whose stamp (render.page_stamp)
    is the one the previous site recorded for it, and whose file there is still the one it wrote (not edited
    since), is copied from there, not rendered again."""
    env = environment()
    before = read_stamps(previous)
    stamps = {}
    context = {"home": home, "result_set": result_set and replace(result_set, fingerprint="", built_at=""),
               "sweeping": sweeping}
    with worker_pool() as pool:  # stopped before the caller removes `root` after an error
        shelf = Shelf(root, pool, previous)
        for page in pages(data, shelf):
            target = root / page.path
            target.parent.mkdir(parents=True, exist_ok=True)
            stamp = page_stamp(page, **context)
            old = previous / page.path if previous else None
            if stamp and old and old.is_file() and before.get(page.path) == written(stamp, old.read_bytes()):
                shutil.copyfile(old, target)
            else:
                html = render(env, page, built_at, home=home, result_set=result_set, sweeping=sweeping)
                target.write_text(html, encoding="utf-8", newline="\n")
            stamps[page.path] = written(stamp, target.read_bytes()) if stamp else None
        shelf.wait()
    (root / PAGES_FILE).write_text(json.dumps(stamps, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    publish.mark_site(root)


def written(stamp: str, html: bytes) -> str:
    """A page's record in PAGES_FILE: its stamp and a hash of the file written for it."""
    return f"{stamp} {hashlib.sha256(html).hexdigest()[:16]}"


def read_stamps(previous: Path | None) -> dict[str, str]:
    """The pages' stamps the previous site recorded; none when it has no record, or one that does not read."""
    try:
        stamps = json.loads((previous / PAGES_FILE).read_text(encoding="utf-8")) if previous else {}
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def build(results: Path, out: Path, built_at: str | None = None, say=print) -> Path:
    """Render the site for a results folder into out (replacing what builds wrote, keeping added pages and the
    user's files); returns index.html. A folder without run files of its own is a root of result sets: see
    build_sets (say: where it tells which sets it rendered and which it reused)."""
    out = Path(out)
    publish.check_apart(results, out)
    publish.check_target(out)
    if sets.is_root(results):
        return build_sets(Path(results), out, built_at or now(), say)
    with worker_pool() as pool:  # its own workers: the memory of summarising is returned before figures are drawn
        data = load(Path(results), pool.map)
    try:
        with publish.replacing(out) as (staging, previous):
            write_pages(data, staging, built_at or now(), previous, sweeping=sets.sweeping(Path(results)))
    except OSError as err:  # a full disk, say: the old site is still in place
        raise publish.SiteError(f"{out}: cannot write the site ({err.strerror or err}); the previous site is "
                                "unchanged: free space or choose another --out") from None
    return out / "index.html"


def build_sets(root: Path, out: Path, built_at: str, say=print) -> Path:
    """One site for every result set under root: each set's report at its path, reused from the previous site when
    its fingerprint is unchanged, and a landing page listing them; returns the landing page."""
    folders = sets.discover(root)
    if not folders:
        raise publish.SiteError(f"{root}: no result files (*.parquet) in it or in its folders; run 'python -m bench "
                                "sweep' first")
    old = sets.read_entries(publish.real_site(out))
    catalogue = sets.catalogue_set(folders)
    try:
        with publish.replacing(out) as (staging, previous):
            entries = [build_set(root, folder, staging, previous, old, built_at, say, catalogue) for folder in folders]
            sets.write_entries(staging, entries, str(root))
            write_landing(staging, built_at)
            publish.mark_site(staging)
    except OSError as err:  # a full disk, say: the old site is still in place
        raise publish.SiteError(f"{out}: cannot write the site ({err.strerror or err}); the previous site is "
                                "unchanged: free space or choose another --out") from None
    return out / "index.html"


def build_set(root: Path, folder: Path, staging: Path, previous: Path | None, old: dict[str, sets.SetEntry],
              built_at: str, say=print, catalogue: Path | None = None) -> sets.SetEntry:
    """A set's report into staging/<its path>: copied from the previous site if its inputs are unchanged. A set of
    a user's recorded models is compared with the catalogue set (own_models.Reference), which is then one of its
    inputs."""
    path = folder.relative_to(root).as_posix()
    compared = catalogue if catalogue not in (None, folder) and sets.holds_own_models(folder) else None
    note = sets.sweeping(folder)  # a set's pages say how far a sweep still training it is: a new note, new pages
    stamp = sets.fingerprint(root, folder) + (f"+{sets.fingerprint(root, compared)}" if compared else "")
    stamp += f"+{hashlib.sha256(note.encode()).hexdigest()[:8]}" if note else ""
    target, before = staging / path, previous / path if previous else None
    if path in old and old[path].fingerprint == stamp and before and (before / "index.html").is_file():
        shutil.copytree(before, target)
        say(f"{path}: unchanged, its pages reused")
        return old[path]
    with worker_pool() as pool:
        data = load(folder, pool.map)
        if compared:
            data.reference = reference(root, folder, compared, load(compared, pool.map))
    entry = sets.describe(root, folder, data.recorded, len(store.run_files(folder)), str(root))
    entry.fingerprint, entry.built_at, entry.sweeping = stamp, built_at, note
    sets.add_raw_data(root, folder, entry, target)
    home = "../" * len(Path(path).parts) + "index.html"
    write_pages(data, target, built_at, before if before and before.is_dir() else None, home, entry, entry.sweeping)
    say(f"{path}: rendered")
    return entry


def reference(root: Path, folder: Path, catalogue: Path, data: Data) -> own_models.Reference:
    """The catalogue set's cells, its pages addressed from the models page at the root of `folder`'s report."""
    up = "../" * len(folder.relative_to(root).parts)
    label = catalogue.relative_to(root).as_posix()
    return own_models.Reference(cell_views(data), label, f"{up}{label}/")


def write_landing(site: Path, built_at: str) -> None:
    page = sets.landing_page(site)
    html = render(environment(), Page("index.html", "sets.html.j2", "Result sets", page), built_at, in_site=False)
    publish.write_text(site / "index.html", html)


def write_diff(page: diff.DiffPage, out: Path, charts: list[figures.Chart] = (), built_at: str | None = None,
               sources: tuple[str, ...] = ()) -> Path:
    """Render a report.diff.DiffPage with its figures into out/diff/ (out: a site or a new folder); returns the
    page's path. sources: the two folders compared, as given (a site of sets links the page from them)."""
    out = Path(out)
    publish.check_target(out)
    entry = page.entry
    folder = out / DIFF_FOLDER / entry.name
    page.figures = [figures.describe(chart, folder, out) for chart in charts]
    files = tuple(path for saved in page.figures for path in (saved.svg, saved.csv))
    added = publish.AddedPage(f"{DIFF_FOLDER}/{entry.name}.html", f"{entry.a} → {entry.b}", entry.summary,
                              ADDED["diff"].section, files, tuple(sources))
    html = render_added(added_page("diff", added.path, page), out, built_at)
    written = publish.add_page(out, added, html)
    for chart in charts:
        figures.write(chart, folder)
    refresh(out)
    return written


def write_matrix(page: matrix.MatrixPage, out: Path, built_at: str | None = None,
                 sources: tuple[str, ...] = ()) -> Path:
    """Render a report.matrix.MatrixPage into out/diff/; returns the page's path."""
    out = Path(out)
    publish.check_target(out)
    added = publish.AddedPage(f"{DIFF_FOLDER}/{page.entry.name}.html", page.entry.a, page.entry.summary,
                              ADDED["matrix"].section, (), tuple(sources))
    written = publish.add_page(out, added, render_added(added_page("matrix", added.path, page), out, built_at))
    refresh(out)
    return written


def render_added(page: Page, out: Path, built_at: str | None) -> str:
    """An added page: with the site's navigation in a site of one set, a link home in a site of sets."""
    if sets.is_sets_site(out):
        return render(environment(), page, built_at or now(), in_site=False, home="index.html")
    return render(environment(), page, built_at or now(), publish.is_built_site(out))


def refresh(out: Path) -> None:
    """List a page just added on the site's index (its landing page, in a site of sets)."""
    if sets.is_sets_site(out) and publish.is_built_site(out):
        write_landing(out, now())
    else:
        refresh_index(out)
