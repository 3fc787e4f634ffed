"""Benchmark of the VAE catalog search: retrieval quality, query latency, training time.

    python bench/vae.py [--skip-epoch-timing]

Prints, in one run:
- P@10 label agreement for 1,000 Fashion-MNIST test queries against the 60,000-image train catalog, for
  (a) the shipped VAE, (b) the original design (2-d latent), (c) raw-pixel cosine kNN and
  (d) PCA at the VAE's latent size;
- furniture leave-one-out P@5 by category (VAE, raw pixels, PCA);
- clothing photos: P@10 by class, 341 validation photos against the 3,068 train photos, for the VAE, raw
  pixels, PCA at the VAE's latent size and the bundled backbone's pooled features (where bundled);
- warm query latency (p50/p95, upload bytes to ranked list) on the 60,000-item catalog;
- the first Visual Search query on each catalog, cold: a new process opens the page and searches once, with the
  disk caches empty (the very first query), then again in another new process with the caches that run filled
  (a server restart);
- training time per epoch, measured here on a slice of the training set and scaled.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import image_search
import vae
from lookalike.core.settings import PROJECT_ROOT as ROOT
from lookalike.domain import CLOTHING_PHOTOS, to_catalog_domain
from lookalike.vae import catalogs
from utils import MODELS_DIR, load_image

SHARED_DATA = ROOT.parent / "shared" / "data"

ORIGINAL_DIR = MODELS_DIR / "vae-fashion-mnist-2d"
# The original design: keras-io's MNIST VAE (2-d latent, 16-unit dense layer, β = 1), five epochs.
ORIGINAL = vae.VAEConfig(
    dataset="fashion-mnist", image_shape=(28, 28, 1), latent_dim=2, beta=1.0,
    filters=(32, 64), dense_units=16, decoder_filters=(64, 32),
)
ORIGINAL_EPOCHS = 5


def original_design() -> vae.Checkpoint:
    """The 2-d latent baseline, trained once (five epochs, like the original) and kept in models/."""
    if not (ORIGINAL_DIR / vae.WEIGHTS_FILE).is_file():
        print(f"training the original 2-d design for {ORIGINAL_EPOCHS} epochs (once) …", flush=True)
        result = vae.train(ORIGINAL, vae.training_images("fashion-mnist"), ORIGINAL_EPOCHS, verbose=0)
        metadata = {
            "dataset": "fashion-mnist", "latent_dim": 2, "beta": 1.0, "epochs": ORIGINAL_EPOCHS,
            "losses": {name: round(values[-1], 4) for name, values in result.history.items()},
            "note": "baseline for bench/vae.py: the original app's 2-d latent design",
            "command": "python bench/vae.py",
        }
        vae.save_checkpoint(result.model, ORIGINAL_DIR, metadata)
    return vae.load_checkpoint_from(ORIGINAL_DIR, "fashion-mnist")


def pca(train: np.ndarray, queries: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    model = PCA(n_components=dims, random_state=0).fit(train)
    return model.transform(train), model.transform(queries)


def fashion_quality() -> int:
    """Print P@10 for the four designs; return the VAE's latent size."""
    catalog = catalogs.load_fashion_mnist("train")
    images, labels = vae.query_sample(1000)
    checkpoint = vae.load_checkpoint("fashion-mnist")
    latent = checkpoint.config.latent_dim
    raw_train = catalog.images.reshape(len(catalog), -1).astype(np.float32) / 255
    raw_queries = images.reshape(len(images), -1).astype(np.float32) / 255

    def score(train: np.ndarray, queries: np.ndarray) -> float:
        return vae.precision_at_k(train, catalog.labels, queries, labels, 10)

    original = original_design()
    rows = [
        (f"(a) this VAE, z_mean, {latent}-d", latent, score(
            vae.encode(checkpoint.model, catalog.images), vae.encode(checkpoint.model, images))),
        ("(b) original design, 2-d latent VAE", 2, score(
            vae.encode(original.model, catalog.images), vae.encode(original.model, images))),
        ("(c) raw pixels, cosine kNN", raw_train.shape[1], score(raw_train, raw_queries)),
        (f"(d) PCA-{latent} of pixels", latent, score(*pca(raw_train, raw_queries, latent))),
    ]
    print("\nFashion-MNIST: P@10 label agreement, 1,000 test queries vs 60,000 train items (cosine)")
    for name, dims, value in rows:
        print(f"  {name:<40} dims {dims:>4}  ({dims * 4:>5} B/vector)  P@10 = {value:.4f}")
    print(f"  vectors {raw_train.shape[1] / latent:.1f}× smaller than raw pixels")
    return latent


def furniture_quality() -> None:
    catalog = catalogs.load_furniture()
    checkpoint = vae.load_checkpoint("furniture")
    latent = checkpoint.config.latent_dim
    raw = catalog.images.reshape(len(catalog), -1).astype(np.float32) / 255
    rows = [
        (f"this VAE, z_mean, {latent}-d", vae.encode(checkpoint.model, catalog.images)),
        ("raw pixels (64×64×3)", raw),
        (f"PCA-{latent} of pixels", pca(raw, raw[:1], latent)[0]),
    ]
    print(f"\nFurniture: leave-one-out P@5 category agreement, {len(catalog)} items, "
          f"{len(catalog.class_names)} categories")
    for name, vectors in rows:
        value = vae.precision_at_k(vectors, catalog.labels, vectors, catalog.labels, 5, leave_one_out=True)
        print(f"  {name:<40} P@5 = {value:.4f}")
    chance = float(((np.bincount(catalog.labels) / len(catalog)) ** 2).sum())
    print(f"  chance (same category at random)         P@5 = {chance:.4f}")


def latency(repeats: int = 100) -> None:
    """Upload bytes → decode → preprocess → encode → top-k over the 60,000 cached latents."""
    from PIL import Image

    checkpoint = vae.load_checkpoint("fashion-mnist")
    catalog = catalogs.load_fashion_mnist("train")
    vectors = vae.catalog_latents(checkpoint, catalog)
    rng = np.random.default_rng(0)
    photo = np.full((480, 360, 3), 235, np.uint8)
    photo[80:400, 60:300] = rng.integers(20, 120, (320, 240, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    upload = buffer.getvalue()

    stages: dict[str, list[float]] = {"decode + preprocess": [], "encode": [], "rank (top_k)": [], "total": []}

    unit_vectors = image_search.normalize(vectors)  # once, as the page does

    def query() -> None:
        marks = [time.perf_counter()]
        image = to_catalog_domain(load_image(upload), "fashion-mnist").image
        marks.append(time.perf_counter())
        latent = vae.encode(checkpoint.model, image[None])[0]
        marks.append(time.perf_counter())
        image_search.top_k(unit_vectors, latent, 10, normalized=True)
        marks.append(time.perf_counter())
        for name, start, end in zip(stages, marks, marks[1:], strict=False):
            stages[name].append((end - start) * 1000)
        stages["total"].append((marks[-1] - marks[0]) * 1000)

    for _ in range(5):
        query()
    for values in stages.values():
        values.clear()
    for _ in range(repeats):
        query()
    p50, p95 = np.percentile(stages["total"], [50, 95])
    print(f"\nWarm query latency, 60,000-item catalog (JPEG 480×360 upload → ranked top-10), {repeats} runs:")
    print(f"  p50 = {p50:.1f} ms   p95 = {p95:.1f} ms   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for name, values in stages.items():
        low, mid = np.min(values), np.median(values)
        print(f"    {name:<20} p50 {mid:6.1f} ms   best {low:6.1f} ms")


def photo_quality() -> None:
    print("\nClothing photos: P@10 by class, 341 validation photos vs 3,068 train photos (cosine; chance 0.100)")
    print(vae.compare_on_photos())


FIRST_QUERY_PHOTO = SHARED_DATA / "clothing-dataset-small" / "test" / "pants"


def first_query(dataset: str, match: str) -> dict[str, float]:
    """In this (new) process: open the Visual Search page on ``dataset``, then search once; seconds for each."""
    from streamlit.testing.v1 import AppTest

    photo = sorted(FIRST_QUERY_PHOTO.glob("*.jpg"))[0]
    at = AppTest.from_file(str(ROOT / "pages" / "visual_search.py"), default_timeout=1800)
    at.session_state["catalog"] = dataset
    at.session_state[f"match_{dataset}"] = match
    started = time.perf_counter()
    at.run()
    opened = time.perf_counter()
    at.file_uploader(key="upload").set_value((photo.name, photo.read_bytes(), "image/jpeg"))
    at.button(key="search").click().run()
    searched = time.perf_counter()
    found = sum(1 for m in at.markdown if m.value.startswith("**1. "))
    if at.exception or at.error or not found:
        raise RuntimeError(f"the search on {dataset} failed: {[e.value for e in [*at.exception, *at.error]]}")
    return {"open": opened - started, "search": searched - opened}


def first_query_times() -> None:
    """Each catalog's first query in a new process, with empty and with filled disk caches."""
    cases = [(dataset, vae.VAE) for dataset in catalogs.DATASETS]
    if vae.bundled_backbone() is not None:
        cases.append((CLOTHING_PHOTOS, vae.FEATURES))
    print("\nFirst Visual Search query, new process (page opened on the catalog, then one search):")
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-cache-") as caches:
        for dataset, match in cases:
            cache = tempfile.mkdtemp(dir=caches)  # empty for the first run, filled by it for the second
            for label in ("empty caches", "filled caches"):
                env = {**os.environ, "LOOKALIKE_CACHE": cache}
                completed = subprocess.run(
                    [sys.executable, __file__, "--first-query", dataset, match], env=env, capture_output=True,
                    text=True, check=False,
                )
                if completed.returncode != 0:
                    print(f"  {dataset} ({match}), {label}: failed: {completed.stderr.strip()[-300:]}")
                    continue
                times = json.loads(completed.stdout.strip().splitlines()[-1])
                print(f"  {dataset:<16} by {match:<8} {label:<14} open {times['open']:6.1f} s   "
                      f"first search {times['search']:5.1f} s   total {times['open'] + times['search']:6.1f} s")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def epoch_timing(sample: int = 12_000) -> None:
    """Time one epoch on ``sample`` training images (after a warm-up) and scale to 60,000."""
    images = vae.training_images("fashion-mnist")[:sample]
    config = vae.load_checkpoint("fashion-mnist").config
    result = vae.train(config, images[:1024], 1, verbose=0)  # builds and traces the graph
    started = time.perf_counter()
    result.model.fit(images, epochs=1, batch_size=128, verbose=0)
    seconds = (time.perf_counter() - started) * 60_000 / sample
    stored = {dataset: vae.load_checkpoint(dataset).metadata.get("seconds_per_epoch") for dataset in catalogs.DATASETS}
    print(f"\nTraining time per epoch (Fashion-MNIST, 60,000 images, batch 128): {seconds:.1f} s measured now")
    print(f"  recorded while training the shipped models: {stored} s/epoch "
          "(furniture: 820 augmented icons per epoch; clothing photos: 3,068 augmented 96×96 photos)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-epoch-timing", action="store_true")
    parser.add_argument("--skip-first-query", action="store_true", help="skip the cold first-query timings")
    parser.add_argument("--first-query", nargs=2, metavar=("DATASET", "MATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_query:  # one cold measurement, in the new process first_query_times started
        print(json.dumps(first_query(*args.first_query)))
        return 0
    try:
        fashion_quality()
        furniture_quality()
        photo_quality()
        latency()
        if not args.skip_first_query:
            first_query_times()
        if not args.skip_epoch_timing:
            epoch_timing()
    except (vae.ModelMissing, catalogs.CatalogError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
