"""Front door of the VAE visual search: a convolutional variational autoencoder searches product catalogs by look.

    python vae.py train --data fashion-mnist|furniture [--epochs N] [--latent N] [--beta B]
    python vae.py search IMAGE --data fashion-mnist|furniture [-k N]
    python vae.py evaluate --data fashion-mnist|furniture

The code lives in ``lookalike.vae``; this module is its command line and re-exports its public API.
TensorFlow is imported only by the commands that need it, so ``--help`` and pages stay fast.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from lookalike.core.images import ImageError, load_image
from lookalike.core.progress import progress_printer
from lookalike.core.vectors import precision_at_k, top_k
from lookalike.datasets.catalog import Catalog, CatalogError
from lookalike.domain import to_catalog_domain
from lookalike.vae.catalogs import DATASETS, load_catalog
from lookalike.vae.checkpoints import (
    METADATA_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    ModelMissing,
    load_checkpoint,
    load_checkpoint_from,
    model_dir,
    save_checkpoint,
    train_command,
)
from lookalike.vae.latents import VAEEmbedder, catalog_latents, decode, encode, generate, interpolate
from lookalike.vae.model import (
    DEFAULTS,
    VAEConfig,
    build_vae,
    kl_loss,
    reconstruction_loss,
    to_uint8,
    to_unit,
)
from lookalike.vae.training import TrainResult, query_sample, retrieval_score, train, train_and_save

__all__ = [
    "DATASETS", "DEFAULTS", "METADATA_FILE", "WEIGHTS_FILE", "Catalog", "CatalogError", "Checkpoint",
    "ModelMissing", "TrainResult", "VAEConfig", "VAEEmbedder", "build_vae", "catalog_latents", "decode", "encode",
    "generate", "interpolate", "kl_loss", "load_catalog", "load_checkpoint", "load_checkpoint_from", "main",
    "model_dir", "precision_at_k", "query_sample", "reconstruction_loss", "retrieval_score", "save_checkpoint",
    "search", "to_uint8", "to_unit", "train", "train_and_save", "train_command",
]


def search(image_path: str, dataset: str, k: int = 10) -> list[tuple[int, float]]:
    """Rank catalog items for one image file; prints and returns (index, score) pairs."""
    checkpoint = load_checkpoint(dataset)
    catalog = load_catalog(dataset)
    query = to_catalog_domain(load_image(image_path), dataset).image
    vectors = catalog_latents(checkpoint, catalog, progress=progress_printer(f"encoding {dataset}"))
    indices, scores = top_k(vectors, encode(checkpoint.model, query[None])[0], k)
    results = [(int(i), float(s)) for i, s in zip(indices, scores, strict=True)]
    for rank, (index, score) in enumerate(results, 1):
        name, category = catalog.captions[index], catalog.category(index)
        line = f"{rank:3d}. {score:.4f}  #{index}  {name}" + (f"  [{category}]" if category != name else "")
        if catalog.creators and catalog.licences:
            line += f"  by {catalog.creators[index]} ({catalog.licences[index]})"
        print(line)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser("train", help="train a VAE on a catalog and save it in models/")
    train_parser.add_argument("--data", choices=DATASETS, required=True)
    train_parser.add_argument("--epochs", type=int, help="default: 15 (fashion-mnist), 80 (furniture)")
    train_parser.add_argument("--latent", type=int, help="latent size (default 32)")
    train_parser.add_argument("--beta", type=float, help="weight of the KL term (default 0.2 for fashion-mnist, 0.5 for furniture)")
    search_parser = sub.add_parser("search", help="find the catalog items that look most like an image")
    search_parser.add_argument("image")
    search_parser.add_argument("--data", choices=DATASETS, required=True)
    search_parser.add_argument("-k", type=int, default=10)
    evaluate_parser = sub.add_parser("evaluate", help="measure retrieval precision of the saved model")
    evaluate_parser.add_argument("--data", choices=DATASETS, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            command = "python vae.py " + shlex.join(list(argv) if argv is not None else sys.argv[1:])
            result = train_and_save(args.data, args.epochs, args.latent, args.beta, command=command)
            print(f"saved {model_dir(args.data)}: {result.retrieval}, {result.seconds_per_epoch:.1f} s/epoch")
        elif args.command == "search":
            search(args.image, args.data, args.k)
        else:
            checkpoint = load_checkpoint(args.data)
            print(json.dumps(retrieval_score(checkpoint.model, args.data)))
    except (ModelMissing, CatalogError, ImageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

