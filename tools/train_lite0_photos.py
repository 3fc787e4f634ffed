"""Fine-tune the bundled ImageNet EfficientNet-Lite0 on clothing photos, in PyTorch, on an accelerator.

The recipe that made `models/clothing-photos-lite0/` (see the README for the whole rebuild):

    python tools/pack_clothing_photos.py ../shared/data/clothing-dataset-full /tmp/clothing-packed
    python tools/train_lite0_photos.py /tmp/clothing-packed --out /tmp/photos-out --init-float16
    python classifier.py import-weights /tmp/photos-out/photos_lite0.npz --data ../shared/data/clothing-dataset-full \
        --record /tmp/photos-out/photos_lite0.json --name clothing-photos-lite0
    python classifier.py evaluate models/clothing-photos-lite0 --subset dress hat longsleeve shoes t-shirt

Each run: 3 epochs with the backbone frozen (AdamW 1e-3), then 25 epochs fine-tuning every block from
``first_block`` up (AdamW, cosine decay after a 10% warm-up, weight decay 1e-4), batch 64, label smoothing 0.1,
dropout 0.3, drop-connect 0.1; augmentation = random resized crop (50-100% of the area, aspect 3/4-4/3) to
224 px, flip, brightness/contrast/saturation jitter (0.75-1.25, 0.75-1.25, 0.7-1.3). Frozen blocks keep
BatchNorm in inference mode. The fine-tuning epoch with the best validation accuracy is kept; predictions
average the logits of the image and its mirror image. Three runs (first fine-tuned block 8, 0 and 5) are
made and the best on validation is saved: `photos_lite0.npz` (arrays keyed like the PyTorch checkpoint, head
`_fc` included) and `photos_lite0.json` (the record that `import-weights` keeps in `metadata.json`).

torch is needed here only: install it in a throwaway environment (`pip install torch==2.13.0 numpy pillow`);
nothing in the app imports it. ``--init-float16`` rounds the starting weights to float16 as the shipped run did.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))
from lite0_torch import Lite0

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "models" / "efficientnet-lite0" / "weights.npz"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SIZE, BATCH = 224, 64
# (first fine-tuned block, head epochs, fine-tuning epochs, fine-tuning learning rate, seed)
RUNS = ((8, 3, 25, 3e-4, 0), (0, 3, 25, 2e-4, 0), (5, 3, 25, 3e-4, 1))
RECIPE = ("ImageNet Lite0; 3 epochs head only (AdamW 1e-3), then 25 epochs fine-tuning from first_block up (AdamW, "
          "cosine after 10% warm-up, weight decay 1e-4); batch 64, label smoothing 0.1, dropout 0.3, drop-connect "
          "0.1; random resized crop (scale 0.5-1, aspect 3/4-4/3) to 224 px, flip, brightness/contrast/saturation "
          "jitter 0.75-1.25/0.75-1.25/0.7-1.3; best validation epoch kept; logits of image + mirror image")


def load_split(root: Path, split: str, classes: list[str], limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A packed split as uint8 NCHW and integer labels, on the device."""
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / split / name).glob("*.jpg"))[:limit]:
            images.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(label)
    x = torch.tensor(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x.to(DEVICE), torch.tensor(labels).to(DEVICE)


def augment(x: torch.Tensor) -> torch.Tensor:
    """Random resized crop to SIZE, flip, colour jitter; uint8 NCHW in, float 0-255 out."""
    n = x.shape[0]
    x = x.float()
    scale = torch.empty(n, device=DEVICE).uniform_(0.5, 1.0)
    ratio = torch.exp(torch.empty(n, device=DEVICE).uniform_(math.log(3 / 4), math.log(4 / 3)))
    sw = torch.sqrt(scale * ratio).clamp(max=1.0)
    sh = torch.sqrt(scale / ratio).clamp(max=1.0)
    tx = (torch.rand(n, device=DEVICE) * 2 - 1) * (1 - sw)
    ty = (torch.rand(n, device=DEVICE) * 2 - 1) * (1 - sh)
    flip = torch.where(torch.rand(n, device=DEVICE) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=DEVICE)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sw * flip, tx, sh, ty
    grid = F.affine_grid(theta, (n, 3, SIZE, SIZE), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    factor = lambda low, high: torch.empty(n, 1, 1, 1, device=DEVICE).uniform_(low, high)  # noqa: E731
    x = x * factor(0.75, 1.25)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor(0.75, 1.25) + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * factor(0.7, 1.3) + grey
    return x.clamp(0, 255)


def evaluate(model: Lite0, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    """Accuracy and logits, each the sum of the image's and its mirror image's."""
    model.eval()
    with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
        logits = torch.cat([model(x[i:i + 256].float()) + model(x[i:i + 256].float().flip(-1))
                            for i in range(0, len(x), 256)])
    return (logits.float().argmax(1) == y).float().mean().item(), logits.float().cpu().numpy()


def set_trainable(model: Lite0, first_block: int) -> None:
    """Freeze the stem and the blocks below ``first_block``."""
    for name, parameter in model.named_parameters():
        frozen = name.startswith(("_conv_stem", "_bn0"))
        if name.startswith("_blocks."):
            frozen = int(name.split(".")[1]) < first_block
        parameter.requires_grad = not frozen


def train_mode(model: Lite0, first_block: int) -> None:
    """Training mode, except the frozen part, whose BatchNorm keeps its ImageNet statistics."""
    model.train()
    model._conv_stem.eval()
    model._bn0.eval()
    for i, block in enumerate(model._blocks):
        if i < first_block:
            block.eval()


def initial_weights(path: Path, float16: bool) -> dict[str, torch.Tensor]:
    """The ImageNet backbone's arrays (its 1,000-class head left out), optionally rounded to float16."""
    with np.load(path, allow_pickle=False) as data:
        return {k: torch.tensor(data[k].astype(np.float16 if float16 else np.float32).astype(np.float32))
                for k in data.files if not k.startswith("_fc.")}


def run(config: tuple, data: tuple, classes: int, init: dict[str, torch.Tensor]) -> dict:
    """One recipe run; returns its scores and the best fine-tuning epoch's weights."""
    first_block, epochs_head, epochs_ft, lr, seed = config
    torch.manual_seed(seed)
    xtr, ytr, xva, yva, xte, yte = data
    model = Lite0(classes=classes, dropout=0.3, drop_connect=0.1).to(DEVICE)
    missing = model.load_state_dict(init, strict=False)
    assert set(missing.missing_keys) == {"_fc.weight", "_fc.bias"}, missing
    model = model.to(memory_format=torch.channels_last)
    best = (-1.0, None, -1)
    steps = math.ceil(len(xtr) / BATCH)
    for phase, (epochs, block, rate) in enumerate([(epochs_head, 99, 1e-3), (epochs_ft, first_block, lr)]):
        set_trainable(model, block)
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=rate,
                                      weight_decay=1e-4 if phase else 0.0)
        total = max(1, epochs * steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s, total=total: min(1.0, (s + 1) / (0.1 * total))
                                                     * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        for epoch in range(epochs):
            train_mode(model, block)
            order = torch.randperm(len(xtr), device=DEVICE)
            for i in range(steps):
                index = order[i * BATCH:(i + 1) * BATCH]
                batch = augment(xtr[index]).contiguous(memory_format=torch.channels_last)
                with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
                    loss = F.cross_entropy(model(batch), ytr[index], label_smoothing=0.1)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
            accuracy, _ = evaluate(model, xva, yva)
            if phase == 1 and accuracy >= best[0]:
                best = (accuracy, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, epoch)
            print(f"run {config}: phase {phase} epoch {epoch} loss {loss.item():.3f} validation {accuracy:.4f}",
                  flush=True)
    model.load_state_dict(best[1])
    validation, _ = evaluate(model, xva, yva)
    test, _ = evaluate(model, xte, yte)
    return {"first_block": first_block, "lr": lr, "seed": seed, "epochs_head": epochs_head, "epochs_ft": epochs_ft,
            "best_epoch": best[2], "val": validation, "test": test, "state": best[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="the packed dataset (tools/pack_clothing_photos.py)")
    parser.add_argument("--out", type=Path, default=Path("photos-out"))
    parser.add_argument("--init", type=Path, default=BUNDLED, help="ImageNet Lite0 arrays (.npz)")
    parser.add_argument("--init-float16", action="store_true", help="round them to float16 first, as the "
                        "shipped run did")
    parser.add_argument("--budget-s", type=float, default=330, help="start no new run after this many seconds")
    parser.add_argument("--quick", action="store_true", help="4 images per class, one short run: a smoke test")
    args = parser.parse_args()
    started = time.time()
    classes = sorted(p.name for p in (args.photos / "train").iterdir() if p.is_dir())
    limit = 4 if args.quick else None
    data = tuple(t for split in ("train", "validation", "test") for t in load_split(args.photos, split, classes, limit))
    print(f"loaded {[tuple(d.shape) for d in data[::2]]} on {DEVICE} in {time.time() - started:.1f} s", flush=True)
    init = initial_weights(args.init, args.init_float16)
    results = []
    for config in ((12, 1, 1, 3e-4, 0),) if args.quick else RUNS:
        result = run(config, data, len(classes), init)
        print({k: v for k, v in result.items() if k != "state"}, f"{time.time() - started:.0f} s", flush=True)
        results.append(result)
        if time.time() - started > args.budget_s:
            break
    best = max(results, key=lambda r: r["val"])
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "photos_lite0.npz",
             **{k: v.float().numpy() for k, v in best["state"].items() if "num_batches" not in k})
    summary = lambda r: {k: v for k, v in r.items() if k != "state"}  # noqa: E731
    record = {
        "trained_on": f"{len(data[1])} clothing photos in {len(classes)} classes (clothing-dataset, squashed to "
                      f"{SIZE} px)",
        "split_sizes": {"train": len(data[1]), "validation": len(data[3]), "test": len(data[5])},
        "recipe": RECIPE,
        "init": {"file": str(args.init), "float16": args.init_float16},
        "runs": [summary(r) for r in results],
        "chosen": summary(best),
        "framework": f"torch {torch.__version__} on {torch.cuda.get_device_name() if DEVICE == 'cuda' else 'cpu'}",
        "seconds": round(time.time() - started, 1),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
    }
    (args.out / "photos_lite0.json").write_text(json.dumps(record, indent=1) + "\n")
    print("chosen", summary(best))


if __name__ == "__main__":
    main()
