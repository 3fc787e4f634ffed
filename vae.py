"""Front door of the VAE visual search: a convolutional variational autoencoder searches product catalogs by look.

    python vae.py train --data fashion-mnist|furniture|clothing-photos [--epochs N] [--latent N] [--beta B]
                        [--stage-epochs N]
    python vae.py search IMAGE --data fashion-mnist|furniture|clothing-photos [-k N] [--match vae|features]
    python vae.py evaluate --data fashion-mnist|furniture|clothing-photos [--baselines [--record]]

The code lives in ``lookalike.vae``; this module is its command line and re-exports its public API.
TensorFlow is imported only by the commands that need it, so ``--help`` and pages stay fast.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from lookalike.core.backends import positional_index
from lookalike.core.images import ImageError, load_image
from lookalike.core.progress import progress_printer
from lookalike.core.vectors import precision_at_k
from lookalike.datasets.catalog import Catalog, CatalogError
from lookalike.domain import CLOTHING_PHOTOS, to_catalog_domain
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
from lookalike.vae.evaluation import features_row, markdown_table, photo_scores, pixel_rows, record_comparison
from lookalike.vae.features import FeatureEmbedder, PooledBackbone, bundled_backbone, catalog_features
from lookalike.vae.latents import VAEEmbedder, catalog_latents, decode, encode, generate, interpolate
from lookalike.vae.matching import FEATURES, MATCH_MODES, VAE, catalog_vectors, query_vector
from lookalike.vae.model import (
    DEFAULTS,
    VAEConfig,
    build_vae,
    kl_loss,
    reconstruction_loss,
    to_uint8,
    to_unit,
)
from lookalike.vae.training import (
    TrainResult,
    query_sample,
    retrieval_score,
    state_folder,
    train,
    train_and_save,
)

__all__ = [
    "DATASETS", "DEFAULTS", "FEATURES", "MATCH_MODES", "METADATA_FILE", "VAE", "WEIGHTS_FILE", "Catalog",
    "CatalogError", "Checkpoint", "FeatureEmbedder", "ModelMissing", "PooledBackbone", "TrainResult", "VAEConfig",
    "VAEEmbedder", "build_vae", "bundled_backbone", "catalog_features", "catalog_latents", "catalog_vectors",
    "decode", "encode", "generate", "interpolate", "kl_loss", "load_catalog", "load_checkpoint",
    "load_checkpoint_from", "main", "model_dir", "precision_at_k", "query_sample", "query_vector",
    "reconstruction_loss", "retrieval_score", "save_checkpoint", "search", "state_folder", "to_uint8", "to_unit",
    "train", "train_and_save", "train_command",
]


class MatchUnavailable(RuntimeError):
    """Matching by pretrained features was asked for where no backbone is available."""


def search(image_path: str, dataset: str, k: int = 10, match: str = VAE) -> list[tuple[int, float]]:
    """Rank catalog items for one image file by ``match`` (VAE latent or pretrained features); prints and
    returns (index, score) pairs."""
    catalog = load_catalog(dataset)
    checkpoint = load_checkpoint(dataset)
    embedder = None
    if match == FEATURES:
        backbone = bundled_backbone()
        if backbone is None:
            raise MatchUnavailable("Matching by pretrained features needs the bundled EfficientNet-Lite0 "
                                   "(models/efficientnet-lite0/), which is missing here; use --match vae.")
        embedder = FeatureEmbedder(backbone)
    photo = load_image(image_path)
    prepared = to_catalog_domain(photo, dataset).image
    vectors = catalog_vectors(match, checkpoint, catalog, embedder, progress_printer(f"embedding {dataset}"))
    index = positional_index(vectors)  # the same vector index interface the page ranks through
    indices, scores = index.search(query_vector(match, checkpoint, photo, prepared, embedder), k)
    results = [(int(i), float(s)) for i, s in zip(indices, scores, strict=True)]
    for rank, (item, score) in enumerate(results, 1):
        name, category = catalog.captions[item], catalog.category(item)
        line = f"{rank:3d}. {score:.4f}  #{item}  {name}" + (f"  [{category}]" if category != name else "")
        if catalog.creators and catalog.licences:
            line += f"  by {catalog.creators[item]} ({catalog.licences[item]})"
        if catalog.paths:
            line += f"  {catalog.paths[item]}"
        print(line)
    return results


def compare_on_photos(record: bool = False) -> str:
    """The P@10-by-class table on the clothing photos (VAE, raw pixels, PCA, pretrained features if bundled);
    with ``record`` the figures are also written into the VAE's metadata.json, where the page reads them."""
    checkpoint = load_checkpoint(CLOTHING_PHOTOS)
    config = checkpoint.config
    rows = {VAE: photo_scores(f"VAE z_mean, β {config.beta:g}", lambda images: encode(checkpoint.model, images))}
    rows["raw"], rows["pca"] = pixel_rows(config.latent_dim)
    backbone = bundled_backbone()
    if backbone is not None:
        embedder = FeatureEmbedder(backbone)
        rows[FEATURES] = features_row(embedder, progress_printer(f"{backbone.name} features"))
    if record:
        record_comparison(checkpoint, rows, {FEATURES: embedder.model_id} if backbone is not None else {},
                          load_catalog(CLOTHING_PHOTOS).class_names)
    return markdown_table(list(rows.values()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser("train", help="train a VAE on a catalog and save it in models/")
    train_parser.add_argument("--data", choices=DATASETS, required=True)
    train_parser.add_argument("--epochs", type=int, help="default: " + ", ".join(
        f"{settings['epochs']} ({dataset})" for dataset, settings in DEFAULTS.items()))
    train_parser.add_argument("--latent", type=int, help="latent size (default: " + ", ".join(
        f"{settings['latent_dim']} for {dataset}" for dataset, settings in DEFAULTS.items()) + ")")
    train_parser.add_argument("--beta", type=float, help="weight of the KL term (default: " + ", ".join(
        f"{settings['beta']} for {dataset}" for dataset, settings in DEFAULTS.items()) + ")")
    train_parser.add_argument("--stage-epochs", type=int, metavar="N",
                              help="stop after N more epochs; the same command carries on from there")
    search_parser = sub.add_parser("search", help="find the catalog items that look most like an image")
    search_parser.add_argument("image")
    search_parser.add_argument("--data", choices=DATASETS, required=True)
    search_parser.add_argument("-k", type=int, default=10)
    search_parser.add_argument("--match", choices=MATCH_MODES, default=VAE,
                               help="rank by the VAE's latent (default) or by pretrained features")
    evaluate_parser = sub.add_parser("evaluate", help="measure retrieval precision of the saved model")
    evaluate_parser.add_argument("--data", choices=DATASETS, required=True)
    evaluate_parser.add_argument("--baselines", action="store_true",
                                 help="clothing-photos: P@10 by class for the VAE, raw pixels, PCA and pretrained "
                                      "features, as a table")
    evaluate_parser.add_argument("--record", action="store_true",
                                 help="with --baselines: write the figures into the model's metadata.json")
    return parser


def rebuild_command(argv: Sequence[str]) -> str:
    """The train command as recorded in the metadata: the stage size doesn't change the result, so it is left out."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--stage-epochs":
            skip = True
        elif not argument.startswith("--stage-epochs="):
            kept.append(argument)
    return "python vae.py " + shlex.join(kept)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            command = rebuild_command(list(argv) if argv is not None else sys.argv[1:])
            result = train_and_save(args.data, args.epochs, args.latent, args.beta, command=command,
                                    stage_epochs=args.stage_epochs)
            if not result.finished:
                print(f"stage done: epoch {result.epochs_done} of {result.epochs}, "
                      f"{result.seconds_per_epoch:.1f} s/epoch; run the same command again to carry on")
            else:
                print(f"saved {model_dir(args.data)}: {result.retrieval}, {result.seconds_per_epoch:.1f} s/epoch")
        elif args.command == "search":
            search(args.image, args.data, args.k, args.match)
        elif args.baselines:
            if args.data != CLOTHING_PHOTOS:
                print("error: --baselines compares methods on the clothing photos; use --data clothing-photos",
                      file=sys.stderr)
                return 2
            print(compare_on_photos(record=args.record))
        else:
            checkpoint = load_checkpoint(args.data)
            print(json.dumps(retrieval_score(checkpoint.model, args.data)))
    except (ModelMissing, CatalogError, ImageError, MatchUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

