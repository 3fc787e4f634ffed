"""Files and folders: content hashes, atomic writes, safe names for downloads, and the folders users may index
(``LOOKALIKE_ROOTS``)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from slugify import slugify

from lookalike.core.settings import Settings, get_settings


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_file_name(text: str, suffix: str, fallback: str = "download", max_length: int = 100) -> str:
    """A download file name made from free text (a caption): ASCII words joined by hyphens, never a path."""
    stem = slugify(text, max_length=max_length, word_boundary=True) or fallback
    return stem + suffix


@contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    On failure the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


def save_npz_atomic(target: str | Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` so that readers see either the old file or the complete new one."""
    with atomic_path(target, suffix=".npz") as temporary:
        np.savez(temporary, **arrays)


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


class FolderError(ValueError):
    """A folder cannot be used as a collection. The message is meant for people."""


def check_folder(folder: str | Path, settings: Settings | None = None) -> Path:
    """Resolve a user-given folder, refusing missing folders and ones outside ``LOOKALIKE_ROOTS``.

    Symlinks are resolved first, so a link that escapes the allowed roots is refused too.
    """
    settings = settings or get_settings()
    path = Path(folder).expanduser()
    if not path.exists():
        raise FolderError(f"The folder {path} does not exist (was it moved or deleted?).")
    if not path.is_dir():
        raise FolderError(f"{path} is a file, not a folder.")
    resolved = path.resolve()
    if settings.roots and not any(resolved.is_relative_to(root) for root in settings.roots):
        allowed = ", ".join(str(root) for root in settings.roots)
        raise FolderError(f"{path} is outside the folders this app may index ({allowed}).")
    return resolved


def inside_roots(path: Path, settings: Settings | None = None) -> bool:
    """True when ``path`` (with links resolved) lies inside the allowed roots, or no roots are set."""
    settings = settings or get_settings()
    resolved = path.resolve()
    return not settings.roots or any(resolved.is_relative_to(root) for root in settings.roots)

