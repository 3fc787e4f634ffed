"""Fine-tune the bundled ImageNet EfficientNet-Lite0 on Fashion-MNIST at 64 px, in PyTorch, on an accelerator.

The recipe that made `models/fashion-mnist-lite0-64/` (see the README for the whole rebuild):

    python tools/train_lite0_fashion_mnist.py --out /tmp/fmnist-out --init-float16 --epochs 18 --stop-after 16
    python classifier.py import-weights /tmp/fmnist-out/fmnist_lite0.npz --data fashion-mnist \
        --record /tmp/fmnist-out/fmnist_lite0.json --name fashion-mnist-lite0-64
    python classifier.py evaluate models/fashion-mnist-lite0-64

Images: 28×28 grey, resized to 64×64 bilinearly with half-pixel centres (what Keras `Resizing` and PIL do),
grey copied to three channels, values 0-255. The last 5,000 training images are held out for validation and
pick the epoch. The whole network is fine-tuned from ImageNet: AdamW 2e-3 (weight decay 5e-5), cosine decay
after a 5% warm-up, 18 epochs budgeted, batch 256, label smoothing 0.1, dropout 0.2, drop-connect 0.1;
augmentation = a random 28-px crop of the image padded by 4 black pixels, and a flip.

Resumable: with ``--checkpoint FILE`` the state (weights, optimiser, schedule, best epoch) is saved after every
epoch, and a later run with the same file continues where the last one stopped. ``--budget-s`` ends a sitting
after the epoch that passes it. torch is needed here only (a throwaway environment); the app never imports it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))
from lite0_torch import Lite0

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "models" / "efficientnet-lite0" / "weights.npz"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SIZE, BATCH, VALIDATION = 64, 256, 5000
RECIPE = ("ImageNet Lite0, whole network fine-tuned at 64 px (28-px grey resized bilinearly, half-pixel centres, "
          "copied to 3 channels, 0-255); AdamW 2e-3, weight decay 5e-5, cosine after 5% warm-up, batch 256, label "
          "smoothing 0.1, dropout 0.2, drop-connect 0.1; 4-px pad + random 28-px crop + flip; last 5,000 train "
          "images validate and pick the epoch")


def read_idx(folder: Path, name: str) -> np.ndarray:
    with gzip.open(folder / name) as handle:
        raw = handle.read()
    if "labels" in name:
        return np.frombuffer(raw, np.uint8, offset=8)
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)


def to_input(x28: torch.Tensor) -> torch.Tensor:
    """uint8 N×28×28 -> float N×3×64×64 in 0-255, bilinear with half-pixel centres."""
    x = F.interpolate(x28.float()[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=False)
    return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


def augment(x28: torch.Tensor) -> torch.Tensor:
    """A random 28-px crop of the image padded by 4 black pixels, and a horizontal flip half the time."""
    n = x28.shape[0]
    padded = F.pad(x28, (4, 4, 4, 4))
    ox, oy = torch.randint(0, 9, (n,), device=DEVICE), torch.randint(0, 9, (n,), device=DEVICE)
    steps = torch.arange(28, device=DEVICE)
    rows = (oy[:, None] + steps[None]).view(n, 28, 1).expand(n, 28, 28)
    cols = (ox[:, None] + steps[None]).view(n, 1, 28).expand(n, 28, 28)
    out = padded[torch.arange(n, device=DEVICE)[:, None, None], rows, cols]
    flip = torch.rand(n, device=DEVICE) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def evaluate(model: Lite0, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
        logits = torch.cat([model(to_input(x[i:i + 1000])) for i in range(0, len(x), 1000)])
    return (logits.argmax(1) == y).float().mean().item()


def initial_weights(path: Path, float16: bool) -> dict[str, torch.Tensor]:
    """The ImageNet backbone's arrays (its 1,000-class head left out), optionally rounded to float16."""
    with np.load(path, allow_pickle=False) as data:
        return {k: torch.tensor(data[k].astype(np.float16 if float16 else np.float32).astype(np.float32))
                for k in data.files if not k.startswith("_fc.")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=FASHION_MNIST, help="folder of the four *-ubyte.gz files")
    parser.add_argument("--out", type=Path, default=Path("fmnist-out"))
    parser.add_argument("--init", type=Path, default=BUNDLED, help="ImageNet Lite0 arrays (.npz)")
    parser.add_argument("--init-float16", action="store_true", help="round them to float16 first, as the "
                        "shipped run did")
    parser.add_argument("--epochs", type=int, default=18, help="the length of the learning-rate schedule")
    parser.add_argument("--stop-after", type=int, help="run only this many of them (the shipped run: 16 of 18)")
    parser.add_argument("--budget-s", type=float, default=400, help="stop after the epoch that passes this")
    parser.add_argument("--checkpoint", type=Path, help="save every epoch here, and resume from it if it exists")
    parser.add_argument("--quick", action="store_true", help="6,000 images, 1 epoch: a smoke test")
    args = parser.parse_args()
    started = time.time()
    xtr, ytr = read_idx(args.data, "train-images-idx3-ubyte.gz"), read_idx(args.data, "train-labels-idx1-ubyte.gz")
    xte, yte = read_idx(args.data, "t10k-images-idx3-ubyte.gz"), read_idx(args.data, "t10k-labels-idx1-ubyte.gz")
    epochs = 1 if args.quick else args.epochs
    if args.quick:
        xtr, ytr, xte, yte = xtr[:6000], ytr[:6000], xte[:500], yte[:500]
    cut = len(xtr) - len(xtr) // 12  # the last 5,000 of 60,000 training images validate
    device = lambda a: torch.tensor(a.copy()).to(DEVICE)  # noqa: E731
    xtr_t, ytr_t, xva_t, yva_t = device(xtr[:cut]), device(ytr[:cut]).long(), device(xtr[cut:]), device(ytr[cut:]).long()
    xte_t, yte_t = device(xte), device(yte).long()
    torch.manual_seed(0)
    model = Lite0(classes=10, dropout=0.2, drop_connect=0.1).to(DEVICE)
    model.load_state_dict(initial_weights(args.init, args.init_float16), strict=False)
    model = model.to(memory_format=torch.channels_last)
    steps = math.ceil(len(xtr_t) / BATCH)
    total = epochs * steps
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-5)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / (0.05 * total)) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    best, first_epoch = (-1.0, None, -1), 0
    if args.checkpoint and args.checkpoint.is_file():
        state = torch.load(args.checkpoint, map_location=DEVICE, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        best, first_epoch = tuple(state["best"]), state["epoch"] + 1
        print(f"resumed from {args.checkpoint} after epoch {state['epoch']}", flush=True)
    epoch = first_epoch - 1
    for epoch in range(first_epoch, min(epochs, args.stop_after or epochs)):
        model.train()
        order = torch.randperm(len(xtr_t), device=DEVICE)
        for i in range(steps):
            index = order[i * BATCH:(i + 1) * BATCH]
            with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
                loss = F.cross_entropy(model(to_input(augment(xtr_t[index]))), ytr_t[index], label_smoothing=0.1)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
        validation = evaluate(model, xva_t, yva_t)
        if validation >= best[0]:
            best = (validation, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, epoch)
        print(f"epoch {epoch} loss {loss.item():.3f} validation {validation:.4f} {time.time() - started:.0f} s",
              flush=True)
        if args.checkpoint:
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "rng": torch.get_rng_state(), "best": best,
                        "epoch": epoch}, args.checkpoint)
        if time.time() - started > args.budget_s and epoch + 1 < epochs:
            print(f"time budget reached after epoch {epoch}; run again with --checkpoint to continue", flush=True)
            break
    model.load_state_dict(best[1])
    test = evaluate(model, xte_t, yte_t)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "fmnist_lite0.npz", **{k: v.float().numpy() for k, v in best[1].items()
                                               if "num_batches" not in k})
    record = {
        "trained_on": "Fashion-MNIST: 28-px grey product shots, 10 classes, shown at 64 px",
        "split_sizes": {"train": len(xtr_t), "validation": len(xva_t), "test": len(xte_t)},
        "validation_split": "the last 5,000 of the 60,000 training images",
        "recipe": RECIPE,
        "init": {"file": str(args.init), "float16": args.init_float16},
        "epochs_budgeted": epochs, "epochs_run": epoch + 1, "best_epoch": best[2],
        "validation_accuracy_torch": best[0], "test_accuracy_torch": test,
        "framework": f"torch {torch.__version__} on {torch.cuda.get_device_name() if DEVICE == 'cuda' else 'cpu'}",
        "seconds": round(time.time() - started, 1),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
    }
    (args.out / "fmnist_lite0.json").write_text(json.dumps(record, indent=1) + "\n")
    print("result", {k: record[k] for k in ("best_epoch", "validation_accuracy_torch", "test_accuracy_torch")})


if __name__ == "__main__":
    main()
