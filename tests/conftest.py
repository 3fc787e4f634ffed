"""Shared fixtures. Tests run on random weights with a private cache folder, on real images from ../shared/data.

The project root is on ``sys.path`` through ``pythonpath`` in pyproject.toml; test helpers are imported
as ``tests.<module>``.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.paths import CLOTHING, PAINTINGS, SHARED_DATA

# Set before any project module reads the settings.
os.environ["LOOKALIKE_WEIGHTS"] = "random"
if "LOOKALIKE_CACHE" not in os.environ:
    os.environ["LOOKALIKE_CACHE"] = _OWN_CACHE = tempfile.mkdtemp(prefix="lookalike-test-cache-")
    atexit.register(shutil.rmtree, _OWN_CACHE, ignore_errors=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Tiers: `make test-fast` runs `-m "not e2e and not slow"`. Browser tests carry `e2e` (tests/e2e/); tests that
# need a model trained for them carry `slow`, given here by the fixture that trains it; a few others are marked
# `slow` where they are written.
TRAINING_FIXTURES = {"tiny_model", "trained"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def paintings() -> list[Path]:
    """The 32 labelled paintings (16 cubism, 16 impressionist)."""
    found = sorted(PAINTINGS.glob("*.jpg"))
    assert len(found) == 32, f"expected 32 paintings in {PAINTINGS}"
    return found


CopyPaintings = Callable[..., Path]


@pytest.fixture(scope="session")
def copy_paintings(tmp_path_factory: pytest.TempPathFactory, paintings: list[Path]) -> CopyPaintings:
    """``copy_paintings(which=slice(None), name="paintings")``: a fresh folder holding private copies of the
    paintings picked by ``which`` (a slice or indices), so that file hashes, edits and deletions stay local."""

    def copy(which: slice | Sequence[int] = slice(None), name: str = "paintings") -> Path:
        folder = tmp_path_factory.mktemp(name)
        chosen = paintings[which] if isinstance(which, slice) else [paintings[i] for i in which]
        for path in chosen:
            shutil.copy(path, folder / path.name)
        return folder

    return copy


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch model on the 460-image subset, 32 px, trained through the CLI."""
    models = tmp_path_factory.mktemp("models")
    argv = ["train", "--data", str(CLOTHING), "--epochs", "1", "--input-size", "32", "--batch-size", "64",
            "--models-dir", str(models), "--name", "tiny"]
    import classifier

    assert classifier.main(argv) == 0
    return models / "tiny"


@pytest.fixture(scope="session")
def style_model():
    """One VGG19 style model (random weights) for the whole run."""
    from lookalike.style.vectors import StyleModel

    return StyleModel.load()


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


@pytest.fixture(scope="session")
def milvus_server():
    """A real Milvus standalone server (PyPI ``milvus``), a separate process on a free loopback port with its
    own folder; always stopped by its process id. Tests that kill it restart it on the same port."""
    pytest.importorskip("milvus", reason="the milvus package (requirements-scale.txt) runs the server")
    from tests.servers import start_milvus

    folder = Path(tempfile.mkdtemp(prefix="lookalike-milvus-"))
    server = None
    try:
        server = start_milvus(folder / "server", folder / "binaries")
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
