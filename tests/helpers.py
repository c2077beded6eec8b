"""Plain helpers several test modules share (their fixtures are in conftest.py): the smoke sweep's grid, the report
CLI, an HTML page's links and tags, a site served in this process, planted copies of a results folder and copies of
a built site."""

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from bench import store
from report import serve

ROOT = Path(__file__).resolve().parent.parent
SMOKE_SCENARIOS = "sigmoid,relu_he,linear,linear_clipnorm"  # conftest's results: the smoke sweep the site tests read
SMOKE_SEEDS = [0, 1]
BUILT_AT = "2000-01-01 00:00:00 UTC"
SITE_FOLDER = "site"  # under pytest's base temp folder: conftest's built site


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "report", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


# -- a page's links and tags --------------------------------------------------------------------------------------


class PageParser(HTMLParser):
    """Links, images, ids and tag balance of one HTML page."""

    VOID = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict] = []
        self.ids: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.ids += [attrs["id"]] if "id" in attrs else []
        self.links += [attrs[k] for k in ("href", "src") if k in attrs]
        if tag == "img":
            self.images.append(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
        else:
            self.stack.pop()


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def html_pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def check_links(root: Path) -> int:
    """Every link of every page under root is local, resolves inside root (fragments too), every image has
    alt text; returns how many links were checked."""
    ids = {path.resolve(): set(parse(path).ids) for path in html_pages(root)}
    checked = 0
    for path in html_pages(root):
        page = parse(path)
        for link in page.links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc and not link.startswith("/"), (path, link)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path.resolve()
            assert target.is_relative_to(root.resolve()) and target.exists(), (path, link)
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in ids[target], (path, link)
            checked += 1
        for image in page.images:
            assert image.get("alt", "").strip(), (path, image)
    return checked


def assert_user_error(done: subprocess.CompletedProcess, words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert words in done.stderr, done.stderr


@contextmanager
def serving(site: Path, base: str) -> Iterator[str]:
    """The site served in this process under base; yields its URL."""
    server = serve.make_server(site, 0, base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield serve.url(server, base)
    finally:
        server.shutdown()
        server.server_close()


# -- copies of a results folder -----------------------------------------------------------------------------------


def rewrite(path, rows=None, run=None) -> None:
    """Rewrite one run file in place: rows(frame) edits its rows, run(dict) its metadata."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    frame = table.to_pandas()
    if rows:
        rows(frame)
    if run:
        run(meta["run"])
    new = pa.Table.from_pandas(frame, schema=store.schema(), preserve_index=False)
    store.write_atomically(new.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}), path)


def copy(results, tmp_path, name="tf-b"):
    """A copy of the results whose runs claim another TensorFlow and Keras version."""
    target = tmp_path / name
    shutil.copytree(results, target)
    for path in store.run_files(target):
        rewrite(path, run=lambda r: r.update(tf_version="9.99.0", keras_version="9.0.0"))
    return target


def run_file(folder, scenario: str, seed: int):
    return next(p for p in store.run_files(folder) if p.name.startswith(f"{scenario}-d2-s{seed}-"))


SETS = ("quick/tf-2.15.1", "quick/tf-2.21.0")  # under the root: a copy of the smoke results, and a link to them


def sets_root(results: Path, root: Path) -> Path:
    (root / "quick").mkdir(parents=True)
    shutil.copytree(results, root / SETS[0])
    (root / SETS[1]).symlink_to(results, target_is_directory=True)
    return root


def site_copy(site: Path, out: Path) -> Path:
    """A copy at out of a site a build made, as if built there (a build marks its folder with the folder's name)."""
    assert out.name == site.name
    shutil.copytree(site, out)
    return out


def closure_changed() -> None:
    """Forget bench.closure's cached imports and hashes: a test edited the code they were computed from."""
    from bench import closure

    closure.imports.cache_clear()
    closure.module_code.cache_clear()
    closure.code_hash.cache_clear()
