"""Checked, time-limited file downloads that leave nothing behind when they fail.

``fetch_checked`` copies a URL (or a file from a mirror folder) into a temporary file beside the
target, hashing on the way, and renames it into place only when the hash matches. Connect and read
timeouts bound a server that never answers, and every failure says what really happened: DNS,
refused connection, timeout, HTTP status, a cut-off transfer or a hash mismatch.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 1 << 20
STALE_PARTIAL_SECONDS = 600  # a temporary download untouched this long was left by a killed process

Progress = Callable[[int, int | None], None]  # (bytes done, bytes in all or None)

_LOCKS: dict[str, threading.Lock] = {}


class FetchError(RuntimeError):
    """A download failed; the message is the reason, in words."""


def fetch_checked(
    source: str,
    target: Path,
    md5: str,
    timeout: tuple[float, float],
    progress: Progress | None = None,
) -> Path:
    """Copy ``source`` (http(s) URL, file URL or path) to ``target`` if its MD5 is ``md5``.

    ``timeout`` is (connect, read) in seconds. Partial files from killed processes are cleared.
    """
    with _LOCKS.setdefault(str(target), threading.Lock()):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise FetchError(f"cannot create {target.parent} ({error})") from error
        remove_stale_partials(target)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(handle)
        temporary = Path(name)
        try:
            found = _copy(source, temporary, progress, timeout)
            if found != md5:
                raise FetchError(
                    f"the file has MD5 {found}, expected {md5} (hash mismatch); it was not saved"
                )
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    return target


def remove_stale_partials(target: Path) -> None:
    now = time.time()
    for partial in target.parent.glob(f".{target.name}.*.part"):
        try:
            if now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                partial.unlink()
        except OSError:
            pass


def _copy(source: str, target: Path, progress: Progress | None, timeout: tuple[float, float]) -> str:
    """Write ``source`` to ``target``; returns the MD5 of what was written."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        chunks, total = _http_chunks(source, timeout)
    else:
        local = Path(urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else source)
        if not local.is_file():
            raise FetchError(f"the mirror folder has no {local}")
        chunks, total = _file_chunks(local), local.stat().st_size
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    with open(target, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done != total:
        raise FetchError(f"the transfer stopped after {done:,} of {total:,} bytes")
    return digest.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _http_chunks(url: str, timeout: tuple[float, float]) -> tuple[Iterator[bytes], int | None]:
    import requests

    try:
        response = requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"})
    except requests.RequestException as error:
        raise FetchError(describe_failure(error, url, timeout)) from error
    if response.status_code != 200:
        response.close()
        raise FetchError(f"the server answered HTTP {response.status_code} {response.reason or ''}".rstrip())
    length = response.headers.get("Content-Length", "")
    total = int(length) if length.isdigit() else None

    def chunks() -> Iterator[bytes]:
        try:
            yield from response.iter_content(CHUNK)
        except requests.RequestException as error:
            raise FetchError(describe_failure(error, url, timeout)) from error
        finally:
            response.close()

    return chunks(), total


def describe_failure(error: BaseException, url: str, timeout: tuple[float, float]) -> str:
    """The real reason a request failed, in words: DNS, refused, timeout or cut off."""
    import requests

    parsed = urllib.parse.urlparse(url)
    chain = _causes(error)
    if isinstance(error, requests.ConnectTimeout):
        return f"no connection to {parsed.netloc} within {timeout[0]:g} s (connect timeout)"
    if isinstance(error, requests.ReadTimeout) or any(isinstance(e, TimeoutError) for e in chain):
        return f"{parsed.netloc} accepted the connection but sent nothing for {timeout[1]:g} s (read timeout)"
    if any(isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError" for e in chain):
        return f"the name {parsed.hostname} could not be resolved (DNS failure: no network?)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"{parsed.netloc} refused the connection"
    if any(type(e).__name__ in ("ChunkedEncodingError", "IncompleteRead", "ProtocolError") for e in chain):
        return f"the connection to {parsed.netloc} was cut off before the file was complete"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and everything it wraps (causes, contexts, wrapped arguments and reasons)."""
    seen: list[BaseException] = []
    stack: list[object] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend(
            [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        )
    return seen


def terminal_progress(label: str) -> Progress:
    """A tqdm byte bar on the terminal (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    state: dict[str, tqdm] = {}

    def update(done: int, total: int | None) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(
                total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, disable=None
            )
        bar = state["bar"]
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update
