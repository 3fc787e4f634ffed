"""``index --engine ray --ray-address …`` against a separate Ray head on loopback, against the local engine:
head start time, end-to-end command time, and how far the vectors are from the local engine's.

    python bench/ray_cluster.py                 # 16 of the sample paintings, VGG19 style vectors at 224 px
    python bench/ray_cluster.py --images 32

Starts ``ray start --head --block`` with token authentication on free loopback ports (as the tests do),
runs the same ``image_search.py index`` three times, each in a fresh process with an empty cache: locally,
through Ray Client (``ray://``) and through the GCS address; then stops the head by its process id.
``LOOKALIKE_WEIGHTS`` is honoured; unset, it is ``random`` (no download; agreement does not depend on it).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike.core.cache import EmbeddingCache  # noqa: E402
from lookalike.core.weights import label as weights_label  # noqa: E402
from lookalike.search.folders import FileHashes  # noqa: E402
from lookalike.style.vectors import StyleConfig  # noqa: E402
from tests.servers import start_ray_head  # noqa: E402

PAINTINGS = ROOT.parent / "shared" / "data" / "images-by-style"


def index(folder: Path, cache: Path, *args: str, env: dict[str, str] | None = None) -> float:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "image_search.py", "index", str(folder), *args], cwd=ROOT,
                            env={**clean, "LOOKALIKE_CACHE": str(cache), **(env or {})}, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"index {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def cached_vectors(cache: Path, folder: Path, model_id: str) -> np.ndarray:
    paths = sorted(folder.glob("*.jpg"))
    hashes = FileHashes(folder, root=cache / "collections")
    found = EmbeddingCache(model_id, root=cache / "embeddings").lookup([hashes.key(path) for path in paths])
    return np.stack([found[hashes.key(path)] for path in paths])


def top5(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.argsort(-(unit @ unit.T), axis=1, kind="stable")[:, :5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("LOOKALIKE_WEIGHTS", "random")
    import ray

    work = Path(tempfile.mkdtemp(prefix="lk-bench-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    head = None
    try:
        folder = work / "paintings"
        folder.mkdir()
        for path in sorted(PAINTINGS.glob("*.jpg"))[: args.images]:
            shutil.copy(path, folder / path.name)
        model_id = StyleConfig().model_id(weights_label("vgg19"))
        head = start_ray_head(work / "ray", token=secrets.token_hex(16))
        print(f"Ray {ray.__version__}; {args.images} paintings; head with token authentication at "
              f"{head.address} (GCS) and {head.client_address}: ready in {head.started_s:.1f} s")
        token = {"RAY_AUTH_TOKEN": head.token}
        runs = {
            "local engine": index(folder, work / "local"),
            f"ray engine, {head.client_address}": index(
                folder, work / "client", "--engine", "ray", "--ray-address", head.client_address, env=token),
            f"ray engine, {head.address}": index(
                folder, work / "gcs", "--engine", "ray", "--ray-address", head.address, env=token),
        }
        local = cached_vectors(work / "local", folder, model_id)
        for (name, seconds), cache in zip(runs.items(), ("local", "client", "gcs"), strict=True):
            vectors = cached_vectors(work / cache, folder, model_id)
            difference = float(np.abs(vectors - local).max())
            same = bool((top5(vectors) == top5(local)).all())
            print(f"  {name:<40} {seconds:6.1f} s   max |v - local| = {difference:.2e}   same top-5 for every "
                  f"painting: {same}", flush=True)
    finally:
        if head is not None:
            started = time.perf_counter()
            head.stop()
            print(f"  head stopped by process group in {time.perf_counter() - started:.1f} s")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
