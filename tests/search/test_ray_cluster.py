"""``index --engine ray --ray-address …`` against a separate Ray head on loopback that requires a token: the
vectors equal the local engine's, through Ray Client (``ray://``) and through the GCS address; a wrong or
missing token, a head that is not there and a malformed address each give one line within a bounded time."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.cache import EmbeddingCache
from lookalike.search.folders import index_folder
from tests.paths import ROOT
from tests.servers import free_port

ray_installed = pytest.mark.skipif(
    shutil.which("ray", path=str(Path(sys.executable).parent)) is None, reason="ray is not installed"
)


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head (``ray start --head --block``) with token authentication, in its own short temp folder."""
    from tests.servers import start_ray_head

    folder = Path(tempfile.mkdtemp(prefix="lk-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    head = None
    try:
        head = start_ray_head(folder, token=secrets.token_hex(16))
        yield head
    finally:
        if head is not None:
            head.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run_index(folder: Path, *args: str, cache: Path, env: dict[str, str] | None = None,
              timeout: float = 420) -> subprocess.CompletedProcess:
    """``python image_search.py index FOLDER ARGS`` in a fresh process, with Ray's variables only from ``env``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    full_env = {**clean, "LOOKALIKE_CACHE": str(cache), **(env or {})}
    return subprocess.run([sys.executable, "image_search.py", "index", str(folder), *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


@ray_installed
@pytest.mark.servers
def test_a_separate_head_embeds_exactly_what_the_local_engine_embeds(ray_head, style_model, copy_paintings, tmp_path):
    folder = copy_paintings(slice(4), "ray-head")
    local = index_folder(folder, style_model, cache=EmbeddingCache(style_model.model_id, root=tmp_path / "local"))

    cache = tmp_path / "cache"
    through_client = run_index(folder, "--engine", "ray", "--ray-address", ray_head.client_address, cache=cache,
                               env={"RAY_AUTH_TOKEN": ray_head.token})
    assert through_client.returncode == 0, through_client.stderr[-3000:]
    assert "4 images indexed" in through_client.stdout and "4 new" in through_client.stdout
    cached = EmbeddingCache(style_model.model_id, root=cache / "embeddings").lookup(local.keys)
    assert len(cached) == 4, "the driver stored the vectors under the local engine's model id"
    local_cached = EmbeddingCache(style_model.model_id, root=tmp_path / "local").lookup(local.keys)
    # Within float tolerance, not bit for bit: Ray runs each actor with OMP_NUM_THREADS=1, so oneDNN sums in
    # another order than the local engine's threads can (differences of about 1e-7 on values around 0.05).
    np.testing.assert_allclose(
        np.stack([cached[key] for key in local.keys]), np.stack([local_cached[key] for key in local.keys]),
        rtol=0, atol=1e-6,
    )

    # The GCS address, on a node of the cluster, with the token in a file: Ray must stay on 127.0.0.1.
    extra = copy_paintings([4], "ray-head-extra")
    shutil.copy(next(extra.glob("*.jpg")), folder)
    token_file = tmp_path / "token"
    token_file.write_text(ray_head.token)
    through_gcs = run_index(folder, "--engine", "ray", "--ray-address", ray_head.address,
                            "--ray-token-file", str(token_file), cache=cache)
    assert through_gcs.returncode == 0, through_gcs.stderr[-3000:]
    assert "5 images indexed" in through_gcs.stdout and "1 new, 4 reused" in through_gcs.stdout


@ray_installed
@pytest.mark.servers
@pytest.mark.parametrize(("kind", "token"), [("gcs", "wrong"), ("client", "")])
def test_a_wrong_or_missing_token_is_refused_in_bounded_time(kind, token, ray_head, copy_paintings, tmp_path):
    folder = copy_paintings(slice(1), "ray-token")
    address = ray_head.address if kind == "gcs" else ray_head.client_address
    started = time.monotonic()
    result = run_index(folder, "--engine", "ray", "--ray-address", address, cache=tmp_path / "cache",
                       env={"RAY_AUTH_TOKEN": secrets.token_hex(16)} if token else {}, timeout=180)
    elapsed = time.monotonic() - started
    error = one_error_line(result)
    assert f"could not join the Ray cluster at {address}" in error and "token" in error
    assert elapsed < 90, f"took {elapsed:.0f} s"
    assert not list((tmp_path / "cache").glob("embeddings/*/shard-*.npz")), "nothing embedded, nothing cached"


@ray_installed
@pytest.mark.parametrize(("address", "phrase"), [
    ("127.0.0.1:PORT", "no Ray head answers at"),
    ("ray://127.0.0.1:PORT", "no Ray head answers at"),
    ("127.0.0.1", "is not a Ray address"),
    ("ray://127.0.0.1:PORT/path", "is not a Ray address"),
])
def test_an_unreachable_or_malformed_address_fails_at_once(address, phrase, copy_paintings, tmp_path):
    address = address.replace("PORT", str(free_port()))
    folder = copy_paintings(slice(1), "ray-nowhere")
    started = time.monotonic()
    result = run_index(folder, "--engine", "ray", "--ray-address", address, cache=tmp_path / "cache", timeout=120)
    assert phrase in one_error_line(result)
    assert time.monotonic() - started < 60
