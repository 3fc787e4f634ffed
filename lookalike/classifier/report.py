"""Scoring a classifier: accuracy, per-class precision/recall/F1 and the confusion matrix on test, and a
Fashion-MNIST model's accuracy on real photos of the classes both datasets share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.classifier.inference import Classifier
from lookalike.classifier.model import CONFUSION_FILE, EVALUATION_FILE, ClassifierError
from lookalike.classifier.storage import read_metadata, write_metadata
from lookalike.core.files import atomic_path, write_text_atomic
from lookalike.core.images import list_images, load_image


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return matrix


def evaluate(
    classifier: Classifier, images: np.ndarray, labels: np.ndarray, subsets: Sequence[Sequence[str]] = ()
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix on prepared inputs.

    Each of ``subsets`` (lists of class names) is also scored on its own: the images of those classes, with
    the answer picked among those classes only (the model used as a smaller classifier), and among all.
    """
    probabilities = classifier.predict_proba(images)
    report = report_from(classifier.classes, labels, probabilities.argmax(axis=1))
    scored = [subset_report(classifier.classes, labels, probabilities, subset) for subset in subsets]
    return {**report, "flip_average": classifier.flip_average, **({"subsets": scored} if scored else {})}


def subset_report(
    classes: list[str], labels: np.ndarray, probabilities: np.ndarray, subset: Sequence[str]
) -> dict[str, Any]:
    """Accuracy on the images of ``subset``'s classes, choosing among them only, and among all classes."""
    lower = {name.lower(): index for index, name in enumerate(classes)}
    missing = [name for name in subset if name.lower() not in lower]
    if missing:
        raise ClassifierError(f"The model has no class {', '.join(missing)} (classes: {', '.join(classes)}).")
    chosen = np.array(sorted({lower[name.lower()] for name in subset}))
    rows = np.isin(labels, chosen)
    truth = np.asarray(labels)[rows]
    among_subset = chosen[probabilities[rows][:, chosen].argmax(axis=1)]
    among_all = probabilities[rows].argmax(axis=1)
    return {
        "classes": [classes[i] for i in chosen],
        "count": int(rows.sum()),
        "accuracy": float(np.mean(among_subset == truth)) if rows.any() else 0.0,
        "accuracy_among_all_classes": float(np.mean(among_all == truth)) if rows.any() else 0.0,
    }


def split_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Accuracy, count and per-class recall of another split, to keep beside the test report."""
    recall = {row["class"]: row["recall"] for row in report["per_class"]}
    return {"accuracy": report["accuracy"], "count": report["count"], "recall": recall}


def report_from(classes: list[str], truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    matrix = confusion_matrix(truth, predicted, len(classes))
    hits = np.diag(matrix).astype(float)
    precision = hits / np.maximum(matrix.sum(axis=0), 1)
    recall = hits / np.maximum(matrix.sum(axis=1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {
        "accuracy": float(hits.sum() / max(matrix.sum(), 1)),
        "classes": list(classes),
        "per_class": [
            {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, matrix.sum(axis=1), strict=True)
        ],
        "confusion_matrix": matrix.tolist(),
        "count": int(matrix.sum()),
    }


def format_report(report: dict[str, Any]) -> str:
    """Accuracy, the per-class table and the confusion matrix as plain text."""
    width = max(len(c) for c in report["classes"]) + 2
    lines = [f"test accuracy: {report['accuracy']:.4f} on {report['count']} images", ""]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for row in report["per_class"]:
        lines.append(
            f"{row['class']:<{width}}{row['precision']:>10.3f}{row['recall']:>10.3f}"
            f"{row['f1']:>10.3f}{row['support']:>10d}"
        )
    if "validation" in report:
        lines.insert(1, f"validation accuracy: {report['validation']['accuracy']:.4f} "
                        f"on {report['validation']['count']} images")
    for subset in report.get("subsets", []):
        lines.append(f"\n{len(subset['classes'])} classes ({', '.join(subset['classes'])}): accuracy "
                     f"{subset['accuracy']:.4f} choosing among them, {subset['accuracy_among_all_classes']:.4f} "
                     f"among all {len(report['classes'])}, on their {subset['count']} test images")
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    short = [c[:6] for c in report["classes"]]
    lines.append(" " * width + "".join(f"{s:>7}" for s in short))
    for name, row in zip(report["classes"], report["confusion_matrix"], strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>7d}" for v in row))
    return "\n".join(lines)


def plot_confusion(report: dict[str, Any], path: Path) -> Path:
    """Save the confusion matrix as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(report["confusion_matrix"])
    classes = report["classes"]
    size = 2.5 + 0.55 * len(classes)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"accuracy {report['accuracy']:.3f} on {report['count']} test images")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        color = "white" if value > threshold else "black"
        axes.text(col, row, str(value), ha="center", va="center", fontsize=8, color=color)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


def write_evaluation(folder: Path, report: dict[str, Any]) -> None:
    """Save ``evaluation.json`` and the confusion-matrix PNG, and the test accuracy in the metadata."""
    write_text_atomic(folder / EVALUATION_FILE, json.dumps(report, indent=2) + "\n")
    plot_confusion(report, folder / CONFUSION_FILE)
    metadata = read_metadata(folder)
    metadata["test_accuracy"] = round(report["accuracy"], 4)
    if "validation" in report:
        metadata["validation_accuracy"] = round(report["validation"]["accuracy"], 4)
    metadata["flip_average"] = bool(report.get("flip_average", True))
    write_metadata(folder, metadata)


# The clothing-dataset-small classes that Fashion-MNIST also has, and the answers counted as right.
# hat, shorts and skirt have no Fashion-MNIST counterpart and are left out.
CLOTHING_TO_FASHION = {
    "t-shirt": ("T-shirt/top",),
    "longsleeve": ("Pullover",),
    "shirt": ("Shirt",),
    "outwear": ("Coat",),
    "dress": ("Dress",),
    "pants": ("Trouser",),
    "shoes": ("Sneaker", "Ankle boot", "Sandal"),
}


def evaluate_photos(
    model: Classifier, root: str | Path, split: str = "test", mapping: dict[str, tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """Accuracy of a Fashion-MNIST model on real photos of the shared classes (``root/split/<class>/``)."""
    mapping = mapping or CLOTHING_TO_FASHION
    folder = Path(root) / split
    per_class: dict[str, dict[str, Any]] = {}
    for name, accepted in mapping.items():
        paths = list(list_images(folder / name)) if (folder / name).is_dir() else []
        if not paths:
            continue
        inputs = np.stack([model.prepare(load_image(path)) for path in paths])
        predicted = [model.classes[i] for i in model.predict_proba(inputs).argmax(axis=1)]
        hits = sum(label in accepted for label in predicted)
        counts = {label: predicted.count(label) for label in sorted(set(predicted), key=predicted.count, reverse=True)}
        per_class[name] = {"accepted": list(accepted), "count": len(paths), "correct": hits, "predicted": counts}
    total = sum(row["count"] for row in per_class.values())
    correct = sum(row["correct"] for row in per_class.values())
    return {"accuracy": correct / max(total, 1), "count": total, "per_class": per_class, "folder": str(folder)}


def format_photo_report(report: dict[str, Any]) -> str:
    lines = [f"real photos ({report['folder']}): accuracy {report['accuracy']:.3f} on {report['count']} images"]
    for name, row in report["per_class"].items():
        top = ", ".join(f"{label} {n}" for label, n in list(row["predicted"].items())[:3])
        lines.append(f"  {name:<11} -> {'/'.join(row['accepted']):<32} {row['correct']}/{row['count']}  ({top})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI
