"""A real headless Chromium opens the built site: no console error, no missing resource, not blank.

Without Chromium these tests skip with one line that names the package, so `nox -s tests` passes on a
machine with only Python, nox and uv. Under CI (CI=true) or with GRADBENCH_REQUIRE_BROWSER=1 a
missing Chromium fails them: .ci/run installs it.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib import image as mpimg

from tests.helpers import serving

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
)  # fmt: skip
CONSOLE_PROBLEMS = ("Uncaught", "Failed to load resource", "ERR_FILE_NOT_FOUND", "Not allowed to load")


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    message = "headless Chromium is needed for the browser tests: apt-get install chromium"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("GRADBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> Path:
    """A copy of the site test_site.py reads (conftest's, swept and built once a session): these tests add check
    pages to it, which tests running beside them in other workers must not see."""
    chromium()  # skip (or fail under CI) before sweeping or building anything
    return shutil.copytree(request.getfixturevalue("built"), tmp_path_factory.mktemp("browser") / "site")


def open_page(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess:
    return open_url(page.as_uri(), profile, *mode)


def open_url(url: str, profile: Path, *mode: str) -> subprocess.CompletedProcess:
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *mode, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def console_problems(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ("CONSOLE" in line and IMAGE_REPORT not in line) or any(p in line for p in CONSOLE_PROBLEMS)
    ]


@pytest.mark.parametrize("name", ["index.html", "vanishing.html"])
def test_page_loads_without_console_errors_and_is_not_blank(built, name, tmp_path):
    shot = tmp_path / "shot.png"
    done = open_page(built / name, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not console_problems(done.stderr), console_problems(done.stderr)
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05, "the screenshot is (nearly) one colour"
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5, f"share of dark pixels {dark:.3f}: no text drawn, or nothing but dark"


def test_dom_is_the_rendered_page(built, tmp_path):
    done = open_page(built / "vanishing.html", tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<h1>Vanishing gradients</h1>" in done.stdout and "vanishing-flow.svg" in done.stdout
    assert not console_problems(done.stderr), console_problems(done.stderr)


IMAGE_REPORT = "IMAGES"
IMAGE_CHECK = """<!DOCTYPE html><html lang="en"><title>image check</title>{images}
<script>window.addEventListener("load", () => {{
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => i.getAttribute("src"));
  console.log("IMAGES " + document.images.length + " BROKEN " + broken.length + " " + broken.join(" "));
}});</script></html>"""


def image_report(folder: Path, sources: list[str], profile: Path) -> str:
    """Load the images in Chromium from a page in `folder`; its console line 'IMAGES n BROKEN k ...'."""
    check = folder / "_image_check.html"
    check.write_text(IMAGE_CHECK.format(images="".join(f'<img src="{s}" alt="">' for s in sources)))
    try:
        done = open_page(check, profile, "--dump-dom")
    finally:
        check.unlink()
    lines = [line for line in done.stderr.splitlines() if f'"{IMAGE_REPORT} ' in line]
    assert lines, f"no image report from Chromium:\n{done.stderr[-2000:]}"
    return lines[0].split('"')[1]


@pytest.mark.parametrize("name", ["index.html", "vanishing.html", "exploding.html", "article.html"])
def test_every_image_of_the_page_decodes_in_the_browser(built, name, tmp_path):
    sources = [m for m in re.findall(r'<img src="([^"]+)"', (built / name).read_text())]
    assert sources, f"{name} has no images"
    report = image_report(built, sources, tmp_path / "profile")
    assert report == f"{IMAGE_REPORT} {len(sources)} BROKEN 0 ", report


def test_the_image_check_catches_a_broken_image(built, tmp_path):
    report = image_report(built, ["style.css", "nope.svg"], tmp_path / "profile")
    assert report == f"{IMAGE_REPORT} 2 BROKEN 2 style.css nope.svg"


LOAD_REPORT = "LOADS"
LOAD_CHECK = """<!DOCTYPE html><html lang="en"><title>load check</title><iframe src="{page}"></iframe>
<script>document.querySelector("iframe").addEventListener("load", e => {{
  const loads = e.target.contentWindow.performance.getEntriesByType("resource");
  const bad = loads.filter(r => r.responseStatus !== 200).map(r => r.responseStatus + " " + r.name);
  console.log("LOADS " + loads.length + " BAD " + bad.length + " " + bad.join(" "));
}});</script></html>"""


def load_report(site: Path, page: str, base: str, profile: Path) -> str:
    """Open the page of `site` served over HTTP under `base`; Chromium's console line 'LOADS n BAD k ...' naming
    every resource the page loaded without a 200 (the check page is written into `site`)."""
    (site / "_load_check.html").write_text(LOAD_CHECK.format(page=page))
    with serving(site, base) as url:
        done = open_url(url + "_load_check.html", profile, "--dump-dom")
    lines = [line for line in done.stderr.splitlines() if f'"{LOAD_REPORT} ' in line]
    assert lines, f"no load report from Chromium:\n{done.stderr[-2000:]}"
    return lines[0].split('"')[1]


@pytest.mark.parametrize("name", ["index.html", "vanishing.html", "scenarios/sigmoid.html"])
def test_the_site_loads_under_a_base_path(built, name, tmp_path):
    site = shutil.copytree(built, tmp_path / "site")
    loads = len(re.findall(r'<img src=|<link rel="stylesheet"', (built / name).read_text()))
    assert load_report(site, name, "/gradbench/", tmp_path / "profile") == f"{LOAD_REPORT} {loads} BAD 0 "


def test_the_load_check_catches_a_link_from_the_host_root(tmp_path):
    chromium()
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text('<!DOCTYPE html><html lang="en"><title>page</title>'
                                    '<link rel="stylesheet" href="/style.css"><img src="figure.svg" alt="f">')
    (site / "style.css").write_text("body { color: black }")
    (site / "figure.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    report = load_report(site, "page.html", "/repo/", tmp_path / "profile")
    assert report.startswith(f"{LOAD_REPORT} 2 BAD 1 404 http://127.0.0.1:") and report.endswith("/style.css")
