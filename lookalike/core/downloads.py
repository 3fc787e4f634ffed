"""Mirror-aware, checksummed, atomic downloads (``LOOKALIKE_MIRROR`` replaces the public hosts)."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from lookalike.core.files import atomic_path, file_sha256
from lookalike.core.settings import get_settings


class DownloadError(RuntimeError):
    """A download failed. The message says what, from where, and what to do."""


def mirrored_url(url: str, mirror: str | None) -> str:
    """Replace scheme and host (and the public prefix) of ``url`` with the mirror, if one is set.

    ``mirror`` is a base URL or a folder; ``url`` is given as ``public_base|relative/path`` so that
    the same relative path works on the public host and on the mirror.
    """
    base, _, relative = url.partition("|")
    if not mirror:
        return base.rstrip("/") + "/" + relative if relative else base
    return mirror.rstrip("/") + "/" + relative


def download_file(
    url: str,
    destination: str | Path,
    sha256: str | None = None,
    mirror: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``url`` (``public_base|relative/path``) to ``destination`` atomically, checking ``sha256``.

    ``LOOKALIKE_MIRROR`` (or ``mirror``) replaces the public base with a URL or a local folder.
    An existing file with the right checksum is kept as it is.
    """
    destination = Path(destination)
    if destination.is_file() and (sha256 is None or file_sha256(destination) == sha256):
        return destination
    source = mirrored_url(url, mirror if mirror is not None else get_settings().mirror)
    with atomic_path(destination) as temporary:
        _fetch(source, temporary, timeout)
        if sha256 is not None and (actual := file_sha256(temporary)) != sha256:
            raise DownloadError(f"{source} has checksum {actual[:12]}…, expected {sha256[:12]}…; not saved.")
    return destination


def _fetch(source: str, target: Path, timeout: float) -> None:
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response, open(target, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise DownloadError(
                f"Could not download {source} ({error}). Check the network, or set LOOKALIKE_MIRROR "
                "to a folder or URL that holds a copy."
            ) from error
        return
    local = Path(parsed.path if parsed.scheme == "file" else source)
    if not local.is_file():
        raise DownloadError(f"{local} does not exist in the mirror folder.")
    shutil.copyfile(local, target)

