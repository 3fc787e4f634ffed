"""File hashes computed once per process: large files (weights) are hashed on first use only.

A file is remembered by its resolved path, size and modification time, so a replaced file is hashed
again and an unchanged one never is.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class Digests:
    md5: str  # what Keras publishes for its weights files
    sha256: str  # what cache keys hold


_DIGESTS: dict[tuple[str, int, int], Digests] = {}
_LOCK = threading.Lock()
HASH_COUNT = {"files": 0}  # files hashed in this process; tests read it to prove the memo works


def digests(path: str | Path) -> Digests:
    """MD5 and SHA-256 of a file, computed in one pass and remembered by path, size and mtime."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
    found = Digests(md5.hexdigest(), sha.hexdigest())
    with _LOCK:
        _DIGESTS[key] = found
        HASH_COUNT["files"] += 1
    return found
