"""Style networks side by side on the 32 labelled paintings: P@5 (compact and full Gram), throughput, storage.

Run: ``.venv/bin/python bench/style_models.py``. The baseline is VGG19 with the weights LOOKALIKE_WEIGHTS gives
(random where ImageNet weights can't be had) and chance (15 of the 31 other paintings share a style).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("LOOKALIKE_CACHE", tempfile.mkdtemp(prefix="bench-style-models-"))

from lookalike.core.images import load_image  # noqa: E402
from lookalike.core.vectors import retrieval_metrics  # noqa: E402
from lookalike.core.weights import WeightsUnavailable  # noqa: E402
from lookalike.search.labels import labels_from_names  # noqa: E402
from lookalike.style.choice import load_style_model  # noqa: E402

PAINTINGS = ROOT.parent / "shared" / "data" / "images-by-style"


def measure(name: str) -> None:
    try:
        model = load_style_model(name)
    except WeightsUnavailable as error:
        print(f"{name:>6}: not available ({error.reason})")
        return
    paths = sorted(PAINTINGS.glob("*.jpg"))
    labels = labels_from_names(paths)
    prepared = [model.prepare(load_image(p)) for p in paths]
    model.embed(prepared[:8])  # warm-up
    started = time.perf_counter()
    compact = np.concatenate([model.embed(prepared[i:i + 8]) for i in range(0, len(prepared), 8)])
    rate = len(prepared) / (time.perf_counter() - started)
    full = model.embed_full(prepared)
    p5_compact = retrieval_metrics(compact, labels)["P@5"]
    p5_full = retrieval_metrics(full, labels)["P@5"]
    print(f"{name:>6}: P@5 compact {p5_compact:.3f} ({compact.shape[1] * 4:,} bytes), full Gram {p5_full:.3f} "
          f"({full.shape[1] * 4:,} bytes), {rate:.1f} images/s at {model.config.size} px   [{model.model_id[:60]}…]")


def main() -> None:
    print(f"chance P@5: {15 / 31:.3f}; weights for VGG19: {os.environ.get('LOOKALIKE_WEIGHTS', 'imagenet')}")
    for name in ("vgg19", "lite0"):
        measure(name)


if __name__ == "__main__":
    main()
