"""Pack a class-folder photo dataset for fast training: every photo squashed to a small square JPEG.

    python tools/pack_clothing_photos.py ../shared/data/clothing-dataset-full /tmp/clothing-packed

The shipped `models/clothing-photos-lite0/` was trained from this packing: each photo is turned upright
(EXIF), converted to RGB and squashed, not cropped, to a square with PIL's bicubic filter (the classifier's
`photo-squash` preprocessing): 160 px at JPEG quality 75 for train (random crops are resampled to 224 px on
the accelerator), 224 px at quality 80 for validation and test. The layout stays `<split>/<class>/<name>.jpg`,
so `tools/train_lite0_photos.py` reads the classes as the sorted folder names of `train/`.
Needs only Pillow (the project's environment has it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageOps

# split -> (side in pixels, JPEG quality)
PACKING = {"train": (160, 75), "validation": (224, 80), "test": (224, 80)}
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def pack_image(source: Path, target: Path, side: int, quality: int) -> None:
    """One photo, upright, RGB, squashed to side×side (bicubic), saved as JPEG."""
    with Image.open(source) as image:
        square = ImageOps.exif_transpose(image).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    target.parent.mkdir(parents=True, exist_ok=True)
    square.save(target, format="JPEG", quality=quality)


def pack(root: Path, out: Path) -> dict[str, int]:
    """Pack every split of ``root`` into ``out``; returns the number of photos per split."""
    counts = {}
    for split, (side, quality) in PACKING.items():
        files = sorted(p for p in (root / split).glob("*/*") if p.suffix.lower() in SUFFIXES)
        for path in files:
            pack_image(path, out / split / path.parent.name / (path.stem + ".jpg"), side, quality)
        counts[split] = len(files)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="train|validation|test/<class>/ photos")
    parser.add_argument("out", type=Path, help="where the packed copy goes")
    args = parser.parse_args()
    if not (args.dataset / "train").is_dir():
        raise SystemExit(f"{args.dataset} has no train/ folder")
    print(f"packed {pack(args.dataset, args.out)} into {args.out}")


if __name__ == "__main__":
    main()
