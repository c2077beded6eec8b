"""python -m report publish [SITE]: commit a built site to a gh-pages branch of the current repository.

ghp-import writes the commit (git fast-import straight into the branch: the working tree, the index and every
other branch stay as they are) with a .nojekyll file, so GitHub Pages serves the folder as it is. ghp-import
always commits, so an unchanged site is found first by comparing the branch's files with the folder's (git
blob ids, computed without writing anything) and is not committed again. Only --push reaches the remote: it fetches
the remote's branch first, so that the commit goes on top of it (ghp-import builds on remote/branch), then pushes.
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ghp_import import GhpError, ghp_import

from report.publish import SiteError
from report.serve import check_site

NOJEKYLL = ".nojekyll"  # GitHub Pages' Jekyll would hide files and folders whose names start with _ or .
DEFAULT_BRANCH = "gh-pages"
DEFAULT_REMOTE = "origin"
DEFAULT_MESSAGE = "Publish the gradbench report"

Listing = dict[str, tuple[str, str]]  # path in the branch -> (git file mode, blob id)


def git(*args: str, stdin: str | None = None) -> str:
    """A git command's output in the current folder; a SiteError with git's own message when it fails."""
    try:
        done = subprocess.run(["git", *args], input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise SiteError("git is not installed; publishing commits the site to a git branch") from None
    if done.returncode != 0:
        raise SiteError(f"git {args[0]}: {last_message(done.stderr)}")
    return done.stdout


def last_message(stderr: str) -> str:
    """git's last line of error (its hints left out), without the 'fatal: ' or 'error: ' in front."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("hint:")] or ["failed"]
    return lines[-1].removeprefix("fatal: ").removeprefix("error: ")


def check_repository() -> None:
    try:
        git("rev-parse", "--show-toplevel")
    except SiteError:
        raise SiteError(f"{Path.cwd()}: not in a git repository (with a working tree); run python -m report "
                        "publish inside the repository whose branch should hold the site") from None


def check_branch(branch: str) -> None:
    """A valid branch name that no worktree has checked out (its files would no longer match the branch)."""
    try:
        git("check-ref-format", "--branch", branch)
    except SiteError:
        raise SiteError(f"--branch {branch}: not a valid branch name; give one such as {DEFAULT_BRANCH}") from None
    if f"branch refs/heads/{branch}" in git("worktree", "list", "--porcelain").splitlines():
        raise SiteError(f"--branch {branch}: checked out in a worktree of this repository; switch it to another "
                        "branch first (publishing writes the branch without checking it out)")


def check_remote(remote: str) -> None:
    remotes = git("remote").split()
    if remote not in remotes:
        known = ", ".join(remotes) or "none (git remote add NAME URL adds one)"
        raise SiteError(f"--remote {remote}: no such remote in this repository; its remotes: {known}")


def committer() -> dict[str, str]:
    """Who git commits as, in the variables ghp-import reads first (it reads git's config only, so an identity
    git finds elsewhere, $EMAIL say, would otherwise give an empty committer)."""
    try:
        ident = git("var", "GIT_COMMITTER_IDENT")
    except SiteError:
        raise SiteError("git has no user to commit as; set one: git config user.name NAME and git config "
                        "user.email EMAIL") from None
    name, _, rest = ident.partition(" <")
    return {"GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": rest.partition(">")[0]}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with these values for the duration, as it was after."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def listing(ref: str) -> Listing | None:
    """The files of a commit (a full ref name: refs/heads/<branch>, refs/remotes/<remote>/<branch>), or None when
    there is no such ref."""
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", ref], capture_output=True).returncode != 0:
        return None
    return dict(map(tree_entry, filter(None, git("ls-tree", "-r", "-z", ref).split("\0"))))


def tree_entry(line: str) -> tuple[str, tuple[str, str]]:
    """git ls-tree's 'MODE blob ID\tPATH' as (PATH, (MODE, ID))."""
    meta, path = line.split("\t", 1)
    file_mode, _, blob = meta.split()
    return path, (file_mode, blob)


def site_listing(site: Path) -> Listing:
    """The files a ghp-import of the site commits: the folder's (symbolic links to folders not followed, as
    ghp-import does) and an empty .nojekyll; blob ids from git hash-object, which writes nothing."""
    files = sorted(Path(folder, name) for folder, _, names in os.walk(site) for name in names)
    # resolved: ghp-import commits what a link to a file points to; os.devnull last: the id of .nojekyll, empty
    paths = [*(p.resolve() for p in files), os.devnull]
    ids = git("hash-object", "--no-filters", "--stdin-paths", stdin="".join(f"{p}\n" for p in paths))
    *blobs, empty = ids.split()
    listing = {p.relative_to(site).as_posix(): (mode(p), blob) for p, blob in zip(files, blobs)}
    return {**listing, NOJEKYLL: ("100644", empty)}


def mode(path: Path) -> str:
    return "100755" if os.access(path, os.X_OK) else "100644"


def fetch_branch(remote: str, branch: str) -> None:
    """Bring the remote's branch, when it has one, into refs/remotes/<remote>/<branch>: ghp-import commits on top of
    that ref (but does not fetch it), so the push fast-forwards."""
    if git("ls-remote", "--heads", remote, f"refs/heads/{branch}").strip():
        git("fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")


def holds(site: Path, branch: str, remote: str) -> bool:
    """Whether the branch already holds exactly the site; when only remote/branch does (a fresh clone, say), the
    branch is pointed at it, where ghp-import would have put an identical commit on top of it."""
    files = site_listing(site)
    if listing(f"refs/heads/{branch}") == files:
        return True
    tracking = f"refs/remotes/{remote}/{branch}"
    if listing(tracking) == files:
        git("branch", "--force", "--no-track", branch, tracking)
        return True
    return False


def short_head(branch: str) -> str:
    return git("rev-parse", "--short", f"refs/heads/{branch}").strip()


def commit_site(site: Path, branch: str, remote: str, message: str) -> None:
    """ghp-import the folder into the branch (on top of remote/branch when the remote has one, as ghp-import
    does), then check the branch holds exactly the site."""
    try:
        with environment(committer()):
            ghp_import(str(site), branch=branch, remote=remote, mesg=message, nojekyll=True, push=False)
    except GhpError as err:
        raise SiteError(f"ghp-import: {err.message}") from None
    if listing(f"refs/heads/{branch}") != site_listing(site):
        raise SiteError(f"ghp-import did not commit {site} to {branch} (git's message above says why)")


def publish(site: Path, branch: str = DEFAULT_BRANCH, push: bool = False, remote: str | None = None,
            message: str = DEFAULT_MESSAGE) -> int:
    """Commit the site to the branch unless it already holds it, push it when asked; prints what it did."""
    check_site(site, "publish")
    check_repository()
    check_branch(branch)
    if push or remote is not None:  # without --push, a missing default remote is no error
        check_remote(remote or DEFAULT_REMOTE)
    remote = remote or DEFAULT_REMOTE
    if push:
        fetch_branch(remote, branch)
    if holds(site, branch, remote):
        print(f"{branch} already holds {site} (commit {short_head(branch)}): nothing to commit")
    else:
        commit_site(site, branch, remote, message)
        print(f"committed {site} to {branch} (commit {short_head(branch)})")
    if push:
        git("push", remote, f"refs/heads/{branch}:refs/heads/{branch}")
        print(f"pushed {branch} to {remote}")
    else:
        print(f"not pushed; to push: python -m report publish --push, or git push {remote} {branch}")
    return 0
