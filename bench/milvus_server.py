"""Milvus through a real server: start time, insert and index-build time, recall@10 against exact search and
query latency through the server's URI, for synthetic clustered style-sized vectors.

    python bench/milvus_server.py                 # 20,000 x 1,024 vectors, 200 queries
    python bench/milvus_server.py --n 100000 --queries 500

Starts a Milvus standalone server (PyPI ``milvus``) on a free loopback port in a temporary folder, the way
the tests do, and stops it by its process id at the end. The baseline, exact search in numpy, is measured in
the same run. Latencies are one query at a time, wall clock, client and server on the same machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike.core.backends import ExactIndex, MilvusIndex  # noqa: E402
from tests.servers import start_milvus, unpack_milvus  # noqa: E402

STYLE_DIM = 1024


def synthetic(n: int, seed: int = 0, dim: int = STYLE_DIM, clusters: int = 2000, rank: int = 64) -> np.ndarray:
    """Unit vectors in clusters on a low-rank subspace plus noise (the generator of bench/scale.py)."""
    shape = np.random.default_rng(7)
    basis = shape.standard_normal((rank, dim), dtype=np.float32) / np.sqrt(rank)
    centers = shape.standard_normal((clusters, rank), dtype=np.float32)
    rng = np.random.default_rng(seed)
    latent = centers[rng.integers(clusters, size=n)] + 0.6 * rng.standard_normal((n, rank), dtype=np.float32)
    vectors = latent @ basis + 0.05 * rng.standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentiles_ms(search, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


def row(name: str, **values) -> None:
    print(f"  {name:<46}" + "  ".join(f"{key}={value}" for key, value in values.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    import milvus
    import pymilvus

    vectors, queries = synthetic(args.n), synthetic(args.queries, seed=1)
    ids = np.arange(args.n, dtype=np.int64) * 7 + 3
    exact = ExactIndex(STYLE_DIM)
    exact.add(ids, vectors)
    truth, _ = exact.search(queries, 10)
    print(f"{args.n:,} vectors of {STYLE_DIM} dimensions, {args.queries} queries, top 10")
    p50, p95 = percentiles_ms(lambda q: exact.search(q, 10), queries)
    row("exact (numpy, in process)", p50_ms=f"{p50:.2f}", p95_ms=f"{p95:.2f}", recall=1.0)

    folder = Path(tempfile.mkdtemp(prefix="lookalike-bench-milvus-"))
    server = None
    try:
        started = time.perf_counter()
        unpack_milvus(folder / "binaries")
        unpacked = time.perf_counter() - started
        server = start_milvus(folder / "server", folder / "binaries")
        cold = server.started_s
        server.restart()
        index = MilvusIndex(STYLE_DIM, uri=server.uri, collection=f"bench_{uuid.uuid4().hex[:8]}", model_id="bench")
        print(f"Milvus server {index.client.get_server_version()} (PyPI milvus {milvus.__version__}), "
              f"pymilvus {pymilvus.__version__}, at {server.uri}")
        row("server: unpack, start, restart", unpack_s=f"{unpacked:.1f}", start_s=f"{cold:.1f}",
            restart_s=f"{server.started_s:.1f}")
        started = time.perf_counter()
        index.add(ids, vectors)
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        info = index.wait_until_indexed()
        row("insert, then flush + HNSW build + hand-off", insert_s=f"{inserted:.1f}",
            index_s=f"{time.perf_counter() - started:.1f}", index=f"{info['index_type']} M={info.get('M')} "
            f"efConstruction={info.get('efConstruction')}")
        for ef in (16, 32, 64, 128):
            index.options["search_params"] = {"ef": ef}
            found, _ = index.search(queries, 10)
            p50, p95 = percentiles_ms(lambda q: index.search(q, 10), queries)
            default = " (default)" if ef == 64 else ""
            row(f"milvus HNSW ef={ef}{default}", p50_ms=f"{p50:.2f}", p95_ms=f"{p95:.2f}",
                recall=f"{recall_at_10(found, truth):.3f}")
        index.options.update(search_params={"ef": 64}, consistency="Strong")
        p50, p95 = percentiles_ms(lambda q: index.search(q, 10), queries[:50])
        row("milvus HNSW ef=64, Strong consistency", p50_ms=f"{p50:.2f}", p95_ms=f"{p95:.2f}")
        index.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
