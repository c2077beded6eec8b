"""python -m report serve [SITE]: preview a built site over HTTP on 127.0.0.1, as a static host would serve it.

The standard library's http.server serves the folder; --base serves it under a path (a project page at
/<repo>/, say), so a preview shows whether every link is relative. Ctrl-C stops it.
"""

import errno
import functools
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from report.publish import SiteError, is_built_site

HOST = "127.0.0.1"


def check_site(folder: Path, command: str) -> None:
    """Refuse a folder that python -m report build did not write."""
    if not folder.is_dir():
        raise SiteError(f"{folder}: no such folder; give a site folder that python -m report build wrote "
                        f"(python -m report {command} site)")
    if not is_built_site(folder):
        raise SiteError(f"{folder}: not a built site (no index.html and build marker); build it first: "
                        f"python -m report build --results RESULTS --out {folder}")


def base_path(text: str) -> str:
    """A URL path prefix in the form /a/b/ ('/' for the root)."""
    parts = [part for part in text.split("/") if part]
    return "/" + "".join(f"{part}/" for part in parts)


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves `directory` under the path `base` (/a/b/): anything outside it is 404, as on a project page."""

    def __init__(self, *args, base: str = "/", **kwargs):
        self.base = base
        super().__init__(*args, **kwargs)  # handles the request

    def send_head(self):
        if urlsplit(self.path).path == self.base[:-1]:  # /repo → /repo/, as static hosts do
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", self.base)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if not self.path.startswith(self.base):
            self.send_error(HTTPStatus.NOT_FOUND, f"outside the site, which is served under {self.base}")
            return None
        return super().send_head()

    def translate_path(self, path: str) -> str:
        return super().translate_path("/" + path[len(self.base):])


def make_server(folder: Path, port: int = 0, base: str = "/") -> ThreadingHTTPServer:
    """An HTTP server of the folder on 127.0.0.1 (port 0: a free one), not yet serving."""
    handler = functools.partial(SiteHandler, directory=str(folder), base=base_path(base))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise SiteError(f"port {port} is in use; give another --port or leave it out to pick a free one") from None
        raise SiteError(f"cannot serve on {HOST}:{port} ({err.strerror or err}); give another --port") from None


def url(server: ThreadingHTTPServer, base: str = "/") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{base_path(base)}"


def serve(folder: Path, port: int = 0, base: str = "/") -> int:
    """Serve the site until Ctrl-C (or SIGTERM), printing its URL first; 0 when stopped."""
    check_site(folder, "serve")
    with make_server(folder, port, base) as server:
        print(f"serving {folder} at {url(server, base)} (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("\nstopped", flush=True)
    return 0
