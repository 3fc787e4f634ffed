"""Shared fixtures. Tests run on random weights with a private cache folder, on real images from ../shared/data."""

from __future__ import annotations

import atexit
import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared_paths import PAINTINGS, SHARED_DATA

# Set before any project module reads the settings.
os.environ["LOOKALIKE_WEIGHTS"] = "random"
if "LOOKALIKE_CACHE" not in os.environ:
    os.environ["LOOKALIKE_CACHE"] = _OWN_CACHE = tempfile.mkdtemp(prefix="lookalike-test-cache-")
    atexit.register(shutil.rmtree, _OWN_CACHE, ignore_errors=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def paintings() -> list[Path]:
    """The 32 labelled paintings (16 cubism, 16 impressionist)."""
    found = sorted(PAINTINGS.glob("*.jpg"))
    assert len(found) == 32, f"expected 32 paintings in {PAINTINGS}"
    return found


@pytest.fixture(scope="session")
def style_model():
    """One VGG19 style model (random weights) for the whole run."""
    import style_transfer

    return style_transfer.StyleModel.load()


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    """A fresh, empty cache folder for tests that count cache hits."""
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def mirror_server():
    """../shared/data served over loopback HTTP, as a stand-in for the public hosts."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SHARED_DATA))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
