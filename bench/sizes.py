"""A built site's size by kind of file, as a static host stores and serves it."""

from pathlib import Path

KINDS = {"html": (".html",), "svg": (".svg",), "data": (".csv.gz", ".csv", ".json")}  # by name ending


def kind(path: Path) -> str:
    return next((k for k, endings in KINDS.items() if path.name.endswith(endings)), "other")


def site_bytes(folder: Path) -> dict[str, int]:
    """Bytes of the files under folder: `total`, and per kind (html, svg, data: figure data and JSON; other)."""
    sizes = dict.fromkeys([*KINDS, "other", "total"], 0)
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            sizes[kind(path)] += size
            sizes["total"] += size
    return sizes
