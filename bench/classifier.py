"""Fashion classifier benchmark: warm prediction latency, training throughput, accuracy of every model.

    python bench/classifier.py [--model models/NAME] [--repeats 40] [--skip-accuracy]

Latency is measured from the uploaded file's bytes to the class probabilities (decode, preprocessing,
one forward pass of the photo and its mirror image), next to a baseline that does the same work through
``keras.Model.predict`` for every upload. The default model is the shipped photo model, clothing-photos-lite0
(EfficientNet-Lite0 at 224 px). Target: p50 <= 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import classifier  # noqa: E402
import utils  # noqa: E402
from lookalike.classifier.backbones import BUNDLED, LITE0  # noqa: E402
from lookalike.classifier.data import make_dataset  # noqa: E402
from lookalike.classifier.model import unfreeze_top  # noqa: E402
from lookalike.classifier.training import compile_model  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "data" / "clothing-dataset-small"
ORIGINAL_FIVE = ["dress", "hat", "longsleeve", "shoes", "t-shirt"]


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):6.1f} ms   p95 {np.percentile(ms, 95):6.1f} ms"


def sample_uploads(count: int = 10) -> list[bytes]:
    """Real photo files as uploaded bytes (a few per class of the shared subset)."""
    paths = sorted((CLOTHING / "test").glob("*/*.jpg"))[:: max(1, 80 // count)][:count]
    return [path.read_bytes() for path in paths]


def bench_latency(model: classifier.Classifier, repeats: int) -> None:
    uploads = sample_uploads()
    for data in uploads[:3]:
        model.predict_image(data)  # warm-up: traces the predict function
    total, prepare, naive = [], [], []
    for i in range(repeats):
        data = uploads[i % len(uploads)]
        start = time.perf_counter()
        prediction = model.predict_image(data)
        total.append(time.perf_counter() - start)
        start = time.perf_counter()
        prepared = model.prepare(utils.load_image(data))
        prepare.append(time.perf_counter() - start)
        start = time.perf_counter()
        batch = np.stack([prepared, prepared[:, ::-1]]).astype(np.float32)  # the same flip average
        model.model.predict(batch, verbose=0)
        naive.append(time.perf_counter() - start + prepare[-1])
        assert abs(float(prediction.probabilities.sum()) - 1) < 1e-4
    print(f"warm prediction latency, upload bytes -> probabilities ({repeats} uploads, {model.folder.name}, "
          f"{model.metadata.get('backbone')} at {model.input_size} px):")
    print(f"  this pipeline (predict_on_batch):   {percentiles(total)}   target p50 <= 100 ms")
    print(f"  of which decode + preprocessing:    {percentiles(prepare)}")
    print(f"  baseline, keras Model.predict:      {percentiles(naive)}")


def bench_training(batches: int, batch_size: int = 256, size: int = classifier.FASHION_SIZE) -> None:
    """Images/s of the from-scratch Fashion-MNIST recipe (whole network trained, 32 px)."""
    data = classifier.load_fashion_data(size, limit=batch_size * (batches + 2))
    images, labels = data.splits["train"]
    model = classifier.build_model(10, size, None, trainable_backbone=True)
    compile_model(model, 1e-3)
    warm = make_dataset(images[: batch_size * 2], labels[: batch_size * 2], batch_size, augment="shift")
    model.fit(warm, epochs=1, verbose=0, shuffle=False)
    timed = make_dataset(images[batch_size * 2 :], labels[batch_size * 2 :], batch_size, augment="shift")
    start = time.perf_counter()
    model.fit(timed, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    count = len(labels) - batch_size * 2
    print(f"training throughput, EfficientNetB0 from scratch at {size} px, batch {batch_size}: "
          f"{count / seconds:.0f} images/s ({count} images in {seconds:.1f} s; "
          f"a 55,000-image epoch takes about {55000 / (count / seconds) / 60:.1f} min)")


def bench_lite0_training(batches: int, batch_size: int = 32) -> None:
    """Images/s of the Keras Lite0 photo recipe at 224 px: head only (frozen), then the top blocks fine-tuned."""
    data = classifier.load_folder_data(CLOTHING, 224, limit=batch_size * (batches + 1), preprocessing="photo-squash")
    images, labels = data.splits["train"]
    model = classifier.build_model(10, 224, BUNDLED, backbone=LITE0)
    for phase in ("head only", "top blocks fine-tuned"):
        if phase != "head only":
            unfreeze_top(model, LITE0)
        compile_model(model, 1e-4)
        warm = make_dataset(images[:batch_size], labels[:batch_size], batch_size, augment="photo")
        model.fit(warm, epochs=1, verbose=0, shuffle=False)
        timed = make_dataset(images[batch_size:], labels[batch_size:], batch_size, augment="photo")
        start = time.perf_counter()
        model.fit(timed, epochs=1, verbose=0, shuffle=False)
        rate = (len(labels) - batch_size) / (time.perf_counter() - start)
        print(f"training throughput, EfficientNet-Lite0 on photos at 224 px, {phase}, batch {batch_size}: "
              f"{rate:.0f} images/s (a 3,068-photo epoch takes about {3068 / rate / 60:.1f} min)")


def bench_accuracy(photos: Path) -> None:
    print("test accuracy of every model in models/:")
    for folder in classifier.list_models(utils.MODELS_DIR):
        model = classifier.load_classifier(folder)
        start = time.perf_counter()
        inputs, labels = classifier.sample_split(model.metadata, "test")
        five = [name for name in ORIGINAL_FIVE if name in model.classes]
        report = classifier.evaluate(model, inputs, labels, [five] if len(five) == len(ORIGINAL_FIVE) else [])
        print(f"  {folder.name}: {report['accuracy']:.4f} on {report['count']} test images of "
              f"{model.metadata['dataset']} (metadata says {model.metadata.get('test_accuracy')}; "
              f"{time.perf_counter() - start:.0f} s)")
        for subset in report.get("subsets", []):
            print(f"    the original app's five classes ({', '.join(subset['classes'])}): {subset['accuracy']:.4f} "
                  f"on their {subset['count']} test images")
        if model.preprocessing == classifier.FASHION and photos.is_dir():
            print("    " + classifier.format_photo_report(classifier.evaluate_photos(model, photos)).replace(
                "\n", "\n    "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder for the latency figures (default: the newest in models/)")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--train-batches", type=int, default=8)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")
    models = classifier.list_models(utils.MODELS_DIR)
    folder = Path(args.model) if args.model else (models[0] if models else None)
    if folder is None:
        print(f"no model in {utils.MODELS_DIR}: python classifier.py train --data fashion-mnist --epochs 8")
    else:
        bench_latency(classifier.load_classifier(folder), args.repeats)
    bench_training(args.train_batches)
    bench_lite0_training(max(2, args.train_batches // 2))
    if not args.skip_accuracy:
        bench_accuracy(CLOTHING)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
