"""report/pages.py: every page kind registered once — its template, its navigation entry, its builder — and the
pages other commands add to a site, registered beside them."""

import json
import re

from report import pages, site
from report.render import TEMPLATES, Page, templates_of
from tests.helpers import html_pages


def test_every_registered_template_exists_with_what_it_extends():
    for template in [kind.template for kind in pages.PAGES] + [kind.template for kind in pages.ADDED.values()]:
        assert all((TEMPLATES / name).is_file() for name in templates_of(template)), template


def test_the_built_site_is_exactly_the_pages_the_registry_builds_with_its_navigation(built):
    recorded = set(json.loads((built / site.PAGES_FILE).read_text()))  # a stamp for each page pages.pages() built
    assert {p.relative_to(built).as_posix() for p in html_pages(built)} == recorded
    nav = re.findall(r'<li><a href="([^"]+)"[^>]*>([^<]+)</a></li>', (built / "methods.html").read_text())
    assert nav == [(link.href, link.title) for link in pages.nav_links()]
    assert {link.href for link in pages.nav_links()} <= recorded


def test_an_added_page_takes_its_template_and_title_from_its_registration():
    class Entry:
        a, b = "tf-2.20.0", "tf-2.21.0"

    class Data:
        entry = Entry()

    page = pages.added_page("diff", "diff/x.html", Data())
    assert page == Page("diff/x.html", "diff.html.j2", "Diff tf-2.20.0 → tf-2.21.0", page.data)
    assert pages.added_page("matrix", "diff/m.html", Data()).title == "Matrix tf-2.20.0"
    assert {kind.section for kind in pages.ADDED.values()} == {"diff", "benchmark"}
