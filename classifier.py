"""Front door of the fashion classifier: an EfficientNetB0 (or the bundled EfficientNet-Lite0) backbone.

    python classifier.py train --data fashion-mnist --epochs 8
    python classifier.py train --data ../shared/data/clothing-dataset-small --fine-tune [--backbone efficientnet-lite0]
    python classifier.py import-weights photos_lite0.npz --data ../shared/data/clothing-dataset-full --name NAME
    python classifier.py evaluate models/clothing-photos-lite0 [--subset dress hat longsleeve shoes t-shirt]
    python classifier.py predict models/clothing-photos-lite0 photo.jpg
    python classifier.py download clothing-dataset-small

The code lives in ``lookalike.classifier``; this module is its command line and re-exports its public API.
TensorFlow is imported only by the commands that need it, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from lookalike.classifier.backbones import AUTO, CHOICES
from lookalike.classifier.class_folders import DatasetError, download_clothing_dataset, scan_class_folders
from lookalike.classifier.data import (
    TrainingData,
    load_data,
    load_fashion_data,
    load_folder_data,
    sample_split,
)
from lookalike.classifier.importing import import_weights
from lookalike.classifier.inference import (
    Classifier,
    InputEmbedder,
    Prediction,
    dataset_embeddings,
    load_classifier,
)
from lookalike.classifier.model import (
    BACKBONE,
    CONFUSION_FILE,
    EMBEDDING_DIM,
    EVALUATION_FILE,
    FASHION,
    FASHION_SIZE,
    METADATA_FILE,
    MIN_SIZE,
    MODEL_FILE,
    PHOTO_SIZE,
    ClassifierError,
    build_model,
    gray_to_input,
    prepare_image,
)
from lookalike.classifier.report import (
    CLOTHING_TO_FASHION,
    confusion_matrix,
    evaluate,
    evaluate_photos,
    format_photo_report,
    format_report,
    report_from,
    split_summary,
    write_evaluation,
)
from lookalike.classifier.storage import list_models, read_metadata, save_model, write_metadata
from lookalike.classifier.training import TrainConfig, train
from lookalike.core import settings
from lookalike.core.downloads import DownloadError
from lookalike.core.images import ImageError
from lookalike.core.lite0 import BundledModelBroken
from lookalike.core.progress import progress_printer
from lookalike.core.weights import WeightsUnavailable

__all__ = [
    "BACKBONE", "CLOTHING_TO_FASHION", "CONFUSION_FILE", "EMBEDDING_DIM", "EVALUATION_FILE", "FASHION",
    "FASHION_SIZE", "METADATA_FILE", "MIN_SIZE", "MODEL_FILE", "PHOTO_SIZE", "Classifier", "ClassifierError",
    "DatasetError", "InputEmbedder", "Prediction", "TrainConfig", "TrainingData", "build_model",
    "confusion_matrix", "dataset_embeddings", "download_clothing_dataset", "evaluate", "evaluate_photos",
    "format_photo_report", "format_report", "gray_to_input", "import_weights", "list_models", "load_classifier",
    "load_data",
    "load_fashion_data", "load_folder_data", "main", "prepare_image", "read_metadata", "report_from",
    "sample_split", "save_model", "scan_class_folders", "train", "write_evaluation", "write_metadata",
]


def _cmd_train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        data=args.data,
        backbone=args.backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        input_size=args.input_size,
        classes=args.classes,
        fine_tune=args.fine_tune,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        from_scratch=args.from_scratch,
        learning_rate=args.learning_rate,
        patience=args.patience,
        limit=args.limit,
        max_minutes=args.max_minutes,
        init_from=Path(args.init_from) if args.init_from else None,
        name=args.name,
        models_dir=Path(args.models_dir),
        command=_command(args),
    )
    train(config, progress_printer("training"))
    return 0


def _command(args: argparse.Namespace) -> str:
    return " ".join(shlex.quote(a) for a in ["python", "classifier.py", *args.argv])


def _cmd_import(args: argparse.Namespace) -> int:
    folder = Path(args.models_dir) / args.name
    import_weights(Path(args.weights), args.data, folder, args.classes, args.input_size,
                   Path(args.record) if args.record else None, _command(args))
    print(f"saved {folder}; score it with: python classifier.py evaluate {folder}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    classifier = load_classifier(args.model)
    subsets = [args.subset] if args.subset else []
    report = evaluate(classifier, *sample_split(classifier.metadata, "test", data=args.data), subsets)
    if classifier.preprocessing != FASHION:  # Fashion-MNIST's validation images are part of its train split
        try:
            validation = sample_split(classifier.metadata, "validation", data=args.data)
            report["validation"] = split_summary(evaluate(classifier, *validation))
        except ClassifierError as error:
            print(f"no validation score: {error}")
    write_evaluation(classifier.folder, report)
    print(format_report(report))
    print(f"\nconfusion matrix saved to {classifier.folder / CONFUSION_FILE}")
    if args.photos:
        print("\n" + format_photo_report(evaluate_photos(classifier, args.photos)))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    classifier = load_classifier(args.model)
    for image in args.images:
        prediction = classifier.predict_image(image)
        print(f"{image}:")
        for name, probability in prediction.ranked():
            print(f"  {probability:7.2%}  {name}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    paths = download_clothing_dataset(Path(args.dest), args.classes, progress=progress_printer("download"))
    print(f"{len(paths)} images in {args.dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fashion classifier: train, import, evaluate, predict.")
    commands = parser.add_subparsers(dest="command", required=True)

    train_p = commands.add_parser("train", help="train a model and save it to models/<name>/")
    train_p.add_argument("--data", default=FASHION, help="'fashion-mnist' or a train|validation|test/<class>/ folder")
    train_p.add_argument("--backbone", choices=CHOICES, default=AUTO,
                         help="auto (default): EfficientNetB0 when its ImageNet weights can be had or when "
                         "training from scratch, else the bundled EfficientNet-Lite0")
    train_p.add_argument("--epochs", type=int, default=10)
    train_p.add_argument("--fine-tune", action="store_true", help="then fine-tune the top blocks at a low rate")
    train_p.add_argument("--fine-tune-epochs", type=int, default=3)
    train_p.add_argument("--fine-tune-learning-rate", type=float, help="default: 1/100 of --learning-rate")
    train_p.add_argument("--classes", nargs="+", help="a subset of class names")
    train_p.add_argument("--input-size", type=int, help=f"pixels (default {FASHION_SIZE} for Fashion-MNIST, 64 with "
                         f"Lite0, {PHOTO_SIZE} for photos; at least {MIN_SIZE})")
    train_p.add_argument("--batch-size", type=int, default=256)
    train_p.add_argument("--learning-rate", type=float)
    train_p.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    scratch = train_p.add_mutually_exclusive_group()
    scratch.add_argument("--from-scratch", dest="from_scratch", action="store_true", default=None,
                         help="random init, whole network trained (default for Fashion-MNIST)")
    scratch.add_argument("--pretrained", dest="from_scratch", action="store_false",
                         help="ImageNet backbone, frozen (default for photos): LOOKALIKE_WEIGHTS for "
                         "EfficientNetB0, the bundled weights for Lite0")
    train_p.add_argument("--limit", type=int, help="at most this many training images (validation and test: "
                         "a fifth of it, at least 1,000), for quick runs")
    train_p.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this time")
    train_p.add_argument("--init-from", help="continue training from this model folder's weights")
    train_p.add_argument("--name", help="model folder name (default from the dataset and input size)")
    train_p.add_argument("--models-dir", default=str(settings.MODELS_DIR))
    train_p.set_defaults(func=_cmd_train)

    import_p = commands.add_parser("import-weights", help="save Lite0 weights fine-tuned elsewhere (.npz keyed "
                                   "like the PyTorch checkpoint) as models/<name>/")
    import_p.add_argument("weights", help="the .npz file (tools/train_lite0_*.py write one)")
    import_p.add_argument("--data", required=True, help="'fashion-mnist' or the class-folder dataset it was "
                          "trained on (its sorted class folders are the classes)")
    import_p.add_argument("--classes", nargs="+", help="the class subset it was trained on, in order")
    import_p.add_argument("--input-size", type=int, help=f"pixels (default 64 for Fashion-MNIST, {PHOTO_SIZE} "
                          "for photos)")
    import_p.add_argument("--record", help="the training run's JSON record, kept in metadata.json")
    import_p.add_argument("--name", required=True, help="model folder name")
    import_p.add_argument("--models-dir", default=str(settings.MODELS_DIR))
    import_p.set_defaults(func=_cmd_import)

    eval_p = commands.add_parser("evaluate", help="accuracy, per-class table and confusion matrix on test "
                                 "(and validation accuracy for photo datasets)")
    eval_p.add_argument("model", help="a models/<name>/ folder")
    eval_p.add_argument("--data", help="the dataset, if not where the model was trained")
    eval_p.add_argument("--subset", nargs="+", metavar="CLASS", help="also score these classes on their own, "
                        "e.g. dress hat longsleeve shoes t-shirt")
    eval_p.add_argument("--photos", help="also score a Fashion-MNIST model on real photos in this class-folder "
                        "dataset (e.g. clothing-dataset-small), through CLOTHING_TO_FASHION")
    eval_p.set_defaults(func=_cmd_evaluate)

    predict_p = commands.add_parser("predict", help="class probabilities of images, highest first")
    predict_p.add_argument("model")
    predict_p.add_argument("images", nargs="+")
    predict_p.set_defaults(func=_cmd_predict)

    download_p = commands.add_parser("download", help="fetch clothing-dataset-small (honours LOOKALIKE_MIRROR)")
    download_p.add_argument("dataset", choices=["clothing-dataset-small"])
    download_p.add_argument("--dest", default="data/clothing-dataset-small")
    download_p.add_argument("--classes", nargs="+")
    download_p.set_defaults(func=_cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (ClassifierError, DatasetError, ImageError, WeightsUnavailable, DownloadError, BundledModelBroken) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
