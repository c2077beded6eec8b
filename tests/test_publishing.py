"""Publishing the built site: previewed over HTTP (report serve), committed to gh-pages (report publish, against
a local bare repository), working under any base path, and carrying what link previews read.

The site is test_site.py's, built once per session from its real smoke sweep; these tests only read it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from report import publish
from tests.helpers import SETS, PageParser, assert_user_error, html_pages, serving

ROOT = Path(__file__).resolve().parent.parent
GIT_IDENTITY = ("GIT_AUTHOR_", "GIT_COMMITTER_", "EMAIL")


def git_env(**extra: str) -> dict[str, str]:
    """The environment for git and the commands under test: no system or user config, no identity of the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(GIT_IDENTITY)}
    return {**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, **extra}


def report_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "report", *args]


def run_report(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(report_command(*args), cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=git_env(GIT_CEILING_DIRECTORIES=str(cwd.parent), **env))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.read()


def first_image(page: Path) -> str:
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.images[0]["src"]


# -- report serve -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["chosen", "given"])
def test_serve_shows_the_site_over_http_and_stops_cleanly_on_ctrl_c(built, port):
    args = ["--port", str(free_port())] if port == "given" else []
    server = subprocess.Popen(report_command("serve", str(built), *args), cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = server.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), line
        if port == "given":
            assert url == f"http://127.0.0.1:{args[1]}/"
        assert fetch(url + "index.html") == (built / "index.html").read_bytes()
        figure = first_image(built / "index.html")
        assert figure.endswith(".svg") and fetch(url + figure) == (built / figure).read_bytes()
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and "Traceback" not in err, err
    assert "stopped" in out


def test_serve_refuses_what_it_cannot_serve(built, tmp_path):
    assert_user_error(run_report("serve", str(tmp_path / "nowhere")), "no such folder")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "index.html").write_text("<p>mine</p>")
    assert_user_error(run_report("serve", str(tmp_path / "notes")),
                      "not a built site (no index.html and build marker); build it first: python -m report build")
    assert_user_error(run_report("serve", str(built), "--port", "http"),
                      "--port: must be a port number from 1 to 65535")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        assert_user_error(run_report("serve", str(built), "--port", busy), f"port {busy} is in use")


# -- report publish ---------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60,
                          env=git_env())
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository with one commit on main, a bare repository as its origin and a dirty working tree."""
    git(tmp_path, "init", "--quiet", "--bare", "origin.git")
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch", "main", "work")
    git(work, "config", "user.name", "Test")
    git(work, "config", "user.email", "test@example.org")
    (work / "README").write_text("project\n")
    git(work, "add", "README")
    git(work, "commit", "--quiet", "-m", "start")
    git(work, "remote", "add", "origin", str(tmp_path / "origin.git"))
    (work / "README").write_text("project, edited\n")  # modified, and staged
    git(work, "add", "README")
    (work / "README").write_text("project, edited again\n")  # and modified again
    (work / "scratch.txt").write_text("untracked\n")
    return work


def branch_files(repo: Path, branch: str = "gh-pages") -> dict[str, bytes]:
    """Every file of the branch with its bytes, read back through git archive."""
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", branch], capture_output=True,
                             check=True, env=git_env()).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def repo_state(repo: Path) -> tuple[str, ...]:
    """What publishing must leave alone: HEAD, the other refs, the index, the working tree."""
    refs = [line for line in git(repo, "show-ref").splitlines() if not line.endswith("/gh-pages")]
    return (git(repo, "symbolic-ref", "HEAD"), *refs, git(repo, "diff", "--cached"), git(repo, "diff"),
            git(repo, "status", "--porcelain", "--untracked-files=all"), (repo / "scratch.txt").read_text())


def head_of(repo: Path, branch: str = "gh-pages") -> str:
    return git(repo, "rev-parse", f"refs/heads/{branch}").strip()


def test_publish_commits_exactly_the_site_and_nojekyll_and_nothing_else(built, repo):
    before = repo_state(repo)
    done = run_report("publish", str(built), cwd=repo)
    assert done.returncode == 0, done.stderr
    assert f"committed {built} to gh-pages" in done.stdout and "not pushed" in done.stdout
    assert branch_files(repo) == {**folder_files(built), ".nojekyll": b""}
    assert git(repo, "log", "--format=%s|%cn <%ce>", "gh-pages").splitlines() == [
        "Publish the gradbench report|Test <test@example.org>"]
    assert repo_state(repo) == before
    assert "gh-pages" not in git(repo / ".." / "origin.git", "branch")  # not pushed


def test_publishing_an_unchanged_site_makes_no_commit_and_a_changed_one_replaces_it(built, repo, tmp_path):
    assert run_report("publish", str(built), cwd=repo).returncode == 0
    first = head_of(repo)
    again = run_report("publish", str(built), cwd=repo)
    assert again.returncode == 0 and "nothing to commit" in again.stdout, again.stdout
    assert head_of(repo) == first
    site = tmp_path / "changed"
    shutil.copytree(built, site)
    gone = first_image(built / "index.html")
    (site / gone).unlink()
    (site / "notes.html").write_text("<p>notes</p>\n")
    done = run_report("publish", str(site), "--message", "Second", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert git(repo, "log", "--format=%s %P", "-1", "gh-pages").split() == ["Second", first]
    files = branch_files(repo)
    assert gone not in files and files["notes.html"] == b"<p>notes</p>\n"
    assert files == {**folder_files(site), ".nojekyll": b""}


def test_publish_pushes_only_when_asked(built, repo):
    origin = repo / ".." / "origin.git"
    assert run_report("publish", str(built), "--branch", "pages", cwd=repo).returncode == 0
    assert "pages" not in git(origin, "branch")
    done = run_report("publish", str(built), "--branch", "pages", "--push", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "nothing to commit" in done.stdout and "pushed pages to origin" in done.stdout
    assert head_of(origin, "pages") == head_of(repo, "pages")


def test_publish_from_a_fresh_clone_builds_on_the_remotes_branch(built, repo, tmp_path):
    assert run_report("publish", str(built), "--push", cwd=repo).returncode == 0
    git(repo, "push", "--quiet", "origin", "main")
    origin = tmp_path / "origin.git"
    pushed = head_of(origin)
    git(tmp_path, "clone", "--quiet", "--single-branch", "--branch", "main", str(origin), "clone")  # as CI checks out
    clone = tmp_path / "clone"
    git(clone, "config", "user.name", "CI")
    git(clone, "config", "user.email", "ci@example.org")
    again = run_report("publish", str(built), "--push", cwd=clone)
    assert again.returncode == 0 and "nothing to commit" in again.stdout, again.stderr
    assert head_of(clone) == head_of(origin) == pushed
    site = shutil.copytree(built, tmp_path / "changed")
    (site / "notes.html").write_text("<p>notes</p>\n")
    done = run_report("publish", str(site), "--push", cwd=clone)
    assert done.returncode == 0, done.stderr
    assert head_of(origin) == head_of(clone) != pushed
    assert git(clone, "log", "--format=%P", "-1", "gh-pages").split() == [pushed]  # a fast-forward


def test_publish_commits_as_the_user_git_finds_without_config(built, repo):
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    done = run_report("publish", str(built), cwd=repo, EMAIL="someone@example.org")  # git's own fallback
    assert done.returncode == 0, done.stderr
    assert git(repo, "log", "--format=%ce", "gh-pages").strip() == "someone@example.org"


def test_publish_refuses_with_one_line(built, repo, tmp_path):
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    assert_user_error(run_report("publish", str(built), cwd=elsewhere), "not in a git repository")
    (tmp_path / "notes").mkdir()
    assert_user_error(run_report("publish", str(tmp_path / "notes"), cwd=repo), "not a built site")
    assert_user_error(run_report("publish", str(built), "--remote", "upstream", cwd=repo),
                      "--remote upstream: no such remote in this repository; its remotes: origin")
    assert_user_error(run_report("publish", str(built), "--branch", "a..b", cwd=repo), "not a valid branch")
    assert_user_error(run_report("publish", str(built), "--branch", "main", cwd=repo), "checked out")
    git(repo, "remote", "remove", "origin")
    assert_user_error(run_report("publish", str(built), "--push", cwd=repo),
                      "--remote origin: no such remote in this repository; its remotes: none (git remote add")
    assert "gh-pages" not in git(repo, "branch")


# -- any base path ----------------------------------------------------------------------------------------


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def broken_links(site: Path, url: str) -> tuple[list[tuple[str, str]], int]:
    """Every (page, link) of the site served at url whose target is not 200 there, and how many links were
    fetched; remote links count as broken (a published page must load nothing from elsewhere)."""
    targets: dict[str, list[tuple[str, str]]] = {}
    for page in html_pages(site):
        name = page.relative_to(site).as_posix()
        parser = PageParser()
        parser.feed(fetch(url + name).decode("utf-8"))
        for link in parser.links:
            target = urldefrag(urljoin(url + name, link)).url
            targets.setdefault(target, []).append((name, link))
    local = urlsplit(url).netloc
    broken = [use for target, uses in targets.items()
              if urlsplit(target).netloc != local or status(target) != 200 for use in uses]
    return broken, len(targets)


def test_every_link_of_every_page_resolves_under_a_base_path(built):
    with serving(built, "/gradbench/") as url:
        assert url.endswith("/gradbench/")
        broken, fetched = broken_links(built, url)
        assert status(url.replace("/gradbench/", "/") + "index.html") == 404  # the prefix is really required
        with urllib.request.urlopen(url.removesuffix("/"), timeout=30) as response:  # redirected, as on GitHub
            assert response.url == url and b"<h1>" in response.read()
    assert broken == []
    assert fetched > 100


def test_the_base_path_check_finds_a_link_from_the_host_root(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text('<a href="methods.html">ok</a> <link rel="stylesheet" href="/style.css">')
    (site / "methods.html").write_text('<a href="index.html#top">ok</a>')
    publish.mark_site(site)  # writes style.css: it exists, but not at the host's root
    with serving(site, "/repo/") as url:
        assert broken_links(site, url) == ([("index.html", "/style.css")], 3)


# -- link previews ----------------------------------------------------------------------------------------


class HeadParser(HTMLParser):
    """A page's <title> text and its <meta> contents by name or property."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title, self.meta, self.in_title = "", {}, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_title = tag == "title"
        if tag == "meta" and (key := attrs.get("name") or attrs.get("property")):
            self.meta[key] = attrs.get("content", "")

    def handle_endtag(self, tag):
        self.in_title = False

    def handle_data(self, data):
        self.title += data if self.in_title else ""


def head(page: Path) -> HeadParser:
    parser = HeadParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_page_has_a_title_and_description_for_link_previews(built):
    for page in html_pages(built):
        tags = head(page)
        assert tags.title.endswith(" · gradbench") and len(tags.title) > len(" · gradbench"), page
        assert len(tags.meta.get("description", "")) > 40, page
        assert tags.meta["og:title"] == tags.title and tags.meta["og:description"] == tags.meta["description"], page
    vanishing = head(built / "vanishing.html")
    assert vanishing.title == "Vanishing gradients · gradbench"
    assert vanishing.meta["description"].startswith("The backward signal shrinks layer by layer. ")
    assert head(built / "index.html").meta["description"] != vanishing.meta["description"]


# -- a site of result sets, published and served --------------------------------------------------------------


def test_a_site_of_sets_is_published_whole_and_served_with_every_link_resolving(sets_site, repo):
    """What the README's steps end with: the gh-pages branch lists both sets and their diff, and serve shows it."""
    done = run_report("publish", str(sets_site), cwd=repo)
    assert done.returncode == 0, done.stderr
    files = branch_files(repo)
    assert files == {**folder_files(sets_site), ".nojekyll": b""}
    landing = files["index.html"].decode()
    diff_page = next(name for name in files if name.startswith("diff/") and name.endswith(".html"))
    assert all(f'href="{path}/index.html"' in landing for path in SETS) and f'href="{diff_page}"' in landing
    with serving(sets_site, "/gradbench/") as url:
        assert fetch(url) == files["index.html"]  # the folder's index at the base path, as on GitHub Pages
        broken, fetched = broken_links(sets_site, url)
    assert broken == [] and fetched > 200
