"""Front door of the shared foundations: settings, safe image decoding, atomic files, mirror-aware downloads.

    python utils.py settings            # the effective LOOKALIKE_* settings
    python utils.py check IMAGE...      # decode each image as the app would: its size, or why it can't be used
    python utils.py weights [--to DIR]  # fetch and check every ImageNet weights file the app uses

The code lives in ``lookalike.core``; this module is its command line and re-exports its public API.
Everything here is light: no TensorFlow import, so the home page and every ``--help`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lookalike.core.counters import INFERENCE_CALLS, LOAD_COUNTS, count_inference, count_load
from lookalike.core.downloads import DownloadError, download_file, mirrored_url
from lookalike.core.files import (
    FolderError,
    atomic_path,
    bytes_sha256,
    check_folder,
    file_sha256,
    inside_roots,
    save_npz_atomic,
    write_text_atomic,
)
from lookalike.core.images import (
    DEFAULT_MAX_SIDE,
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    ImageError,
    center_crop,
    list_images,
    load_image,
    make_thumbnail,
    png_bytes,
    resize_short_side,
    square_image,
)
from lookalike.core.progress import Progress, progress_printer
from lookalike.core.settings import MODELS_DIR, PROJECT_ROOT, Settings, get_settings
from lookalike.core.weights import PUBLISHED, WeightsUnavailable, prefetch
from lookalike.core.weights import label as weights_label

__all__ = [
    "DEFAULT_MAX_SIDE", "IMAGE_SUFFIXES", "INFERENCE_CALLS", "LOAD_COUNTS", "MAX_PIXELS", "MODELS_DIR", "PROJECT_ROOT",
    "DownloadError", "FolderError", "ImageError", "Progress", "Settings", "WeightsUnavailable", "atomic_path",
    "bytes_sha256", "center_crop", "check_folder", "count_inference", "count_load", "download_file", "file_sha256",
    "get_settings", "inside_roots", "list_images", "load_image", "main", "make_thumbnail", "mirrored_url",
    "png_bytes", "progress_printer", "resize_short_side", "save_npz_atomic",
    "square_image", "weights_label", "write_text_atomic",
]


def _cmd_settings(args: argparse.Namespace) -> int:
    settings = get_settings()
    print(f"LOOKALIKE_WEIGHTS  {settings.weights}")
    for spec in PUBLISHED.values():
        own = settings.own_weights_for(spec.key)
        print(f"{spec.variable:<33}{own or '(unset: ' + spec.filename + ')'}")
    print(f"LOOKALIKE_MIRROR   {settings.mirror or '(public hosts)'}")
    print(f"LOOKALIKE_DOWNLOAD_TIMEOUT {settings.download_timeout:g} s")
    print(f"LOOKALIKE_ROOTS    {':'.join(map(str, settings.roots)) or '(anywhere)'}")
    print(f"LOOKALIKE_CACHE    {settings.cache_dir}")
    print(f"models             {MODELS_DIR}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.images:
        try:
            image = load_image(name)
        except ImageError as error:
            print(f"{name}: {error}")
            failed += 1
            continue
        height, width = image.shape[:2]
        print(f"{name}: {width}×{height} RGB")
    return 1 if failed else 0


def _cmd_weights(args: argparse.Namespace) -> int:
    """Fetch (or find) and check each published weights file; exit 1 if any is missing or wrong."""
    ok = prefetch(destination=Path(args.to).expanduser() if args.to else None)
    if not ok:
        print("Some weights files are missing or wrong (see above).", file=sys.stderr)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="utils.py", description="Lookalike's settings and image decoding.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("settings", help="print the effective LOOKALIKE_* settings")
    check = commands.add_parser("check", help="decode images as the app would, and say which can't be used")
    check.add_argument("images", nargs="+")
    fetch = commands.add_parser(
        "weights",
        help="fetch and check every ImageNet weights file the app uses (honours LOOKALIKE_MIRROR)",
        description="Find each published weights file (models/, then the Keras cache) or download it, check "
        "Keras's published hash, and print where it is. Exits 1 if any file is missing or wrong.",
    )
    fetch.add_argument("--to", help="fetch into this folder instead (to copy to an offline machine's models/)")
    args = parser.parse_args(argv)
    return {"settings": _cmd_settings, "check": _cmd_check, "weights": _cmd_weights}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
