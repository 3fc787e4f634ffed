"""Style search figures: throughput against the machine's limit, query latency, index time, storage, agreement.

Run: ``.venv/bin/python bench/style_search.py`` (add ``--quick`` for a smaller run). Prints figures only.
It uses the weights set by LOOKALIKE_WEIGHTS (default ImageNet; ``random`` where they can't be had).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import image_search  # noqa: E402
import style_transfer  # noqa: E402
import utils  # noqa: E402

VGG19_GFLOP_PER_IMAGE = 36.2  # VGG19 up to block5_conv1 at 224 x 224
PAINTINGS = ROOT.parent / "shared" / "data" / "images-by-style"


def matmul_gflops(size: int = 4096, repeats: int = 5) -> float:
    """The machine's float32 compute limit, from a size x size matmul in TensorFlow."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.linalg.matmul(a, b).numpy()
    best = min(_timed(lambda: tf.linalg.matmul(a, b).numpy()) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def throughput(model: style_transfer.StyleModel, images: list[np.ndarray], batch: int) -> tuple[float, float]:
    """Images/s for batched embedding, and for a plain one-at-a-time ``model.predict`` loop."""
    model.embed(images[:batch])  # warm up the graph
    batched = len(images) / _timed(lambda: [model.embed(images[i : i + batch]) for i in range(0, len(images), batch)])
    features = model.features
    features.predict(style_transfer.preprocess(np.stack(images[:1])), verbose=0)
    plain = len(images) / _timed(
        lambda: [features.predict(style_transfer.preprocess(image[None]), verbose=0) for image in images]
    )
    return batched, plain


def query_latency(model, collection, paths: list[Path], repeats: int) -> tuple[float, float]:
    """Upload bytes to ranked list: decode, prepare, embed, rank."""
    timings = []
    for i in range(repeats):
        data = paths[i % len(paths)].read_bytes()
        started = time.perf_counter()
        image_search.search_by_style(utils.load_image(data), collection, model, k=10)
        timings.append(time.perf_counter() - started)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


def original_app_click(paths: list[Path]) -> float:
    """The original app: re-embed every painting one at a time at 400 px, 3 style layers, on each click."""
    import keras

    features = style_transfer.selected_layers_model(style_transfer.STYLE_LAYERS[:3])
    started = time.perf_counter()
    for path in paths:
        image = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(400, 400)))
        outputs = features(style_transfer.preprocess(image[None]))
        [style_transfer.gram_matrix(output).numpy() for output in outputs]
    return time.perf_counter() - started


def agreement(model, museum_images: list[np.ndarray], batch: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean top-10 overlap between the compact ranking and the exact full-Gram ranking."""
    full = np.concatenate([model.embed_full(museum_images[i : i + batch]) for i in range(0, len(museum_images), batch)])
    compact = np.concatenate([model.embed(museum_images[i : i + batch]) for i in range(0, len(museum_images), batch)])
    overlaps = []
    for i in range(len(full)):
        exact = set(image_search.top_k(full, full[i], 11)[0]) - {i}
        approx = set(image_search.top_k(compact, compact[i], 11)[0]) - {i}
        overlaps.append(len(exact & approx) / 10)
    return float(np.mean(overlaps)), full, compact


def page_rerun_seconds(repeats: int = 5) -> tuple[float, int]:
    """Median time of a Style Search page rerun after a search, and the model calls it made."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "pages" / "style_search.py"), default_timeout=900)
    app.session_state["collection_choice"] = "Another folder…"
    app.session_state["custom_folder"] = str(PAINTINGS)
    app.run()
    query = PAINTINGS / "s_cubism-01.jpg"
    app.file_uploader(key="style_query").set_value((query.name, query.read_bytes(), "image/jpeg")).run()
    next(b for b in app.button if b.label == "Search for Similar Images").click().run()
    app.run()
    calls = sum(utils.INFERENCE_CALLS.values())
    timings = [_timed(app.run) for _ in range(repeats)]
    return float(np.median(timings)), sum(utils.INFERENCE_CALLS.values()) - calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    print(f"weights: {utils.weights_label('vgg19')}   cores: {os.cpu_count()}")

    gflops = matmul_gflops()
    limit = gflops / VGG19_GFLOP_PER_IMAGE
    print(f"machine limit: {gflops:.0f} GFLOP/s (4096² float32 matmul) -> {limit:.2f} images/s for VGG19@224")

    model = style_transfer.StyleModel.load()
    museum_paths = list(utils.list_images(image_search.museum_folder()))
    count = 32 if args.quick else 64
    images = [model.prepare(utils.load_image(p)) for p in museum_paths[:count]]
    batched, plain = throughput(model, images, args.batch)
    print(f"embedding throughput @224: batched {batched:.2f} img/s ({batched / limit:.0%} of limit), "
          f"one-at-a-time predict {plain:.2f} img/s ({plain / limit:.0%} of limit)")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["LOOKALIKE_CACHE"] = cache
        cold = image_search.index_folder(image_search.museum_folder(), model, batch_size=args.batch)
        print(f"cold index of {len(cold)} Met paintings: {cold.stats.seconds:.1f} s "
              f"({len(cold) / cold.stats.seconds:.2f} img/s including decoding and hashing)")
        warm = image_search.index_folder(image_search.museum_folder(), model, batch_size=args.batch)
        print(f"warm re-index (all cached): {warm.stats.seconds * 1000:.0f} ms, {warm.stats.new} embedded")
        p50, p95 = query_latency(model, warm, museum_paths, 10 if args.quick else 30)
        print(f"warm query latency (upload -> ranked list, 174 paintings): p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms")
        shard_bytes = sum(p.stat().st_size for p in Path(cache, "embeddings").rglob("*.npz"))
        print(f"stored embedding: {warm.vectors.shape[1]} float32 = {warm.vectors.shape[1] * 4} bytes "
              f"({shard_bytes / len(warm):.0f} bytes per image on disk with keys); "
              f"full upper-triangle Gram vector: {sum(c * (c + 1) // 2 for c in (64, 128, 256, 512, 512)) * 4:,} bytes")

    museum_images = [model.prepare(utils.load_image(p)) for p in museum_paths]
    overlap, _, _ = agreement(model, museum_images, args.batch)
    print(f"compact vs exact full-Gram ranking on {len(museum_images)} Met paintings: top-10 overlap {overlap:.3f}")

    painting_paths = sorted(PAINTINGS.glob("*.jpg"))
    if painting_paths:
        labels = image_search.labels_from_names(painting_paths)
        paintings = [model.prepare(utils.load_image(p)) for p in painting_paths]
        _, full, compact = agreement(model, paintings, args.batch)
        exact_metrics = image_search.retrieval_metrics(full, labels)
        compact_metrics = image_search.retrieval_metrics(compact, labels)
        print(f"P@5 on {len(paintings)} labelled paintings: full Gram {exact_metrics['P@5']:.3f}, "
              f"compact {compact_metrics['P@5']:.3f} (difference {compact_metrics['P@5'] - exact_metrics['P@5']:+.3f}); "
              f"compact P@1 {compact_metrics['P@1']:.3f}, mAP {compact_metrics['mAP']:.3f}")
        rerun, calls = page_rerun_seconds()
        print(f"Style Search page rerun after a search: {rerun * 1000:.0f} ms (AppTest), {calls} model calls")
        seconds = original_app_click(painting_paths)
        print(f"original app, one click (32 paintings one at a time at 400 px): {seconds:.1f} s")


if __name__ == "__main__":
    main()
