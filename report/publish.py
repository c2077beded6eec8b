"""Publishing a site folder: only into a folder this project made, replacing only what it wrote.

A built folder carries MARKER, which lists the files the build wrote, so a rebuild may replace them and
never a folder of the user's. A build writes into a staging folder beside the target, copies in every
file of the old site that no build wrote (a user's notes, say), and renames it into place; a site folder
that is, holds or lies inside the results folder is refused before anything is written. Pages that other commands
add (report diff, report benchmark-page) are each written with a sidecar `<page>.page.json`, an
`AddedPage`: a rebuild copies every such page with its files into the new site, and the index lists
them by kind.
"""

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import store
from bench.errors import UserError, check_stopped
from report.render import TEMPLATES

MARKER = ".gradbench-site"  # marks a folder this project built, so a rebuild may replace it
MARKER_TEXT = "built by python -m report build; rebuilding replaces this folder\n"
BUILD_MARKER = ".gradbench-build"  # in a build's staging and old folders beside the site, naming the folder
SIDECAR = ".page.json"  # <name>.html's entry is <name>.page.json beside it


class SiteError(UserError):
    """The site cannot be written where asked; the message says what to do."""


@dataclass(frozen=True)
class AddedPage:
    """A page another command added to the site: kept across rebuilds and linked from the index."""

    path: str  # the page, relative to the site root
    title: str  # the link's text
    summary: str  # said beside the link
    kind: str  # where the index lists it: "diff" or "benchmark"
    files: tuple[str, ...] = ()  # the page's other files (relative to the root), kept with it
    sources: tuple[str, ...] = ()  # the results folders a diff compares, as given (a site of sets links it from them)


def is_built_site(out: Path) -> bool:
    """Whether a folder holds a site that report build wrote (not only pages other commands added)."""
    return (out / MARKER).is_file() and (out / "index.html").is_file()


def check_target(out: Path) -> None:
    here = Path.cwd().resolve()
    if Path(out).resolve() in (here, *here.parents):
        raise SiteError(f"{out}: the site folder must not be the current folder or hold it (a build replaces "
                        "it); give a folder of its own, such as --out site")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise SiteError(f"{out}: exists and is not a gradbench site; choose an empty or new --out folder")


def check_apart(results: Path, out: Path) -> None:
    """Refuse a site folder that is, holds or lies inside the results folder: a rebuild replaces the site."""
    r, o = Path(results).resolve(), Path(out).resolve()
    if r == o or o in r.parents or r in o.parents:
        raise SiteError(f"{out}: a site folder must not be, hold or lie inside the results folder {results}; "
                        "choose an --out beside it")


def mark_site(root: Path) -> None:
    """The stylesheet every page links, and the marker listing every file of the build."""
    shutil.copyfile(TEMPLATES / "style.css", root / "style.css")
    written = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    (root / MARKER).write_text(MARKER_TEXT + "".join(f"{name}\n" for name in written))


def written_by_build(root: Path) -> set[str]:
    """The files the marker of a built folder lists (none for a folder built before markers listed them)."""
    lines = (root / MARKER).read_text().splitlines() if (root / MARKER).is_file() else []
    return {MARKER, *lines[1:]}


def keep_users_files(old_root: Path, new_root: Path) -> None:
    """Copy into the new site every file of the old one that no build wrote and the new one does not hold."""
    if not old_root.is_dir():
        return
    ours = written_by_build(old_root) | {BUILD_MARKER}
    for path in old_root.rglob("*"):
        name = path.relative_to(old_root).as_posix()
        if path.is_dir() and not any(path.iterdir()):  # an empty folder: no build makes one
            (new_root / name).mkdir(parents=True, exist_ok=True)
        elif path.is_file() and name not in ours and not (new_root / name).exists():
            (new_root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, new_root / name)


def made_by_build(path: Path) -> bool:
    """Whether a folder beside a site is one a build made: its BUILD_MARKER names it (a folder of the user's of the
    same name, or a copy of a site, has none)."""
    try:
        return (path / BUILD_MARKER).read_text().strip() == path.name
    except OSError:
        return False


def claim(folder: Path, name: str) -> None:
    """Mark a folder as the build's own under the name it is about to get."""
    (folder / BUILD_MARKER).write_text(f"{name}\n")


def remove_dead_builds(out: Path) -> None:
    """Delete the staging and old folders that builds killed mid-way left beside out; only those their marker
    proves a build made."""
    for path in [*out.parent.glob(f".{out.name}.*.building"), *out.parent.glob(f".{out.name}.*.old")]:
        if made_by_build(path) and not store.writer_alive(path):
            shutil.rmtree(path, ignore_errors=True)


def real_site(out: Path) -> Path:
    """The folder a site link points to (a rebuild updates it, not the link)."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


@contextmanager
def replacing(out: Path) -> Iterator[tuple[Path, Path | None]]:
    """(a staging folder holding out's added pages, the site it replaces or None); on success it becomes out."""
    out = real_site(out)
    remove_dead_builds(out)
    staging = out.with_name(f".{out.name}.{os.getpid()}.building")
    if staging.exists() and not made_by_build(staging):
        raise SiteError(f"{staging}: a folder of that name is in the way of the build; move it away")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    claim(staging, staging.name)
    try:
        previous = out if (out / MARKER).is_file() else None
        keep_added_pages(out, staging)
        yield staging, previous
        check_stopped()  # a Ctrl-C swallowed while the site was made still leaves the previous site
        keep_users_files(out, staging)
        replace_folder(staging, out)
    finally:
        if made_by_build(staging):
            shutil.rmtree(staging, ignore_errors=True)


def replace_folder(new: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    if old.exists():
        raise SiteError(f"{old}: a folder of that name is in the way of the build; move it away")
    if out.exists():
        claim(out, old.name)
        out.rename(old)
    (new / BUILD_MARKER).unlink()
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


# -- pages added by other commands -----------------------------------------------------------------


def sidecar(path: str) -> str:
    return path.removesuffix(".html") + SIDECAR


def write_text(path: Path, text: str) -> None:
    """Write a page whole or not at all (a full disk leaves the previous one): through a temporary file beside it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def add_page(out: Path, page: AddedPage, html: str) -> Path:
    """Write an added page and its entry into out (a site, or a new folder that becomes one); returns its path.

    The page's other files are the caller's to write; a folder holding nothing but them counts as new."""
    out.mkdir(parents=True, exist_ok=True)
    new = all(path.name in page.files for path in out.iterdir())
    (out / page.path).parent.mkdir(parents=True, exist_ok=True)
    write_text(out / page.path, html)
    fields = {k: v for k, v in asdict(page).items() if k != "sources" or v}  # no sources: as before they existed
    entry = json.dumps(fields, indent=1, sort_keys=True, ensure_ascii=False)
    write_text(out / sidecar(page.path), entry + "\n")
    if not (out / "style.css").exists():
        shutil.copyfile(TEMPLATES / "style.css", out / "style.css")
    if new:  # a later build may replace it, keeping this page
        (out / MARKER).write_text(MARKER_TEXT)
    return out / page.path


def added_pages(root: Path) -> list[AddedPage]:
    """Every added page whose files are all in root, in path order."""
    entries = [json.loads(path.read_text(encoding="utf-8")) for path in Path(root).rglob(f"*{SIDECAR}")]
    pages = [AddedPage(**{**e, "files": tuple(e.get("files", ())), "sources": tuple(e.get("sources", ()))})
             for e in entries]
    return sorted((p for p in pages if all((root / f).is_file() for f in (p.path, *p.files))), key=lambda p: p.path)


def keep_added_pages(old_root: Path, new_root: Path) -> None:
    """Copy every added page of the old site, with its entry and files, into the new one."""
    if not old_root.is_dir():
        return
    for page in added_pages(old_root):
        for name in (page.path, sidecar(page.path), *page.files):
            (new_root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(old_root / name, new_root / name)
