"""Labels for evaluating a collection: from file names (``s_cubism-01.jpg`` -> ``cubism``) or a CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def labels_from_names(paths: Sequence[Path]) -> list[str]:
    """``s_cubism-01.jpg`` -> ``cubism``: the text between an optional ``x_`` prefix and the first ``-``."""
    labels = []
    for path in paths:
        stem = path.stem
        stem = stem.split("_", 1)[1] if "_" in stem[:3] else stem
        labels.append(stem.split("-")[0].lower())
    return labels


def labels_from_csv(csv_path: Path, paths: Sequence[Path]) -> list[str | None]:
    """Labels from a CSV with columns ``file,label`` (file names relative to the folder, or bare names)."""

    table: dict[str, str] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[0] and row[0].lower() != "file":
                table[row[0]] = row[1]
                table[Path(row[0]).name] = row[1]
    return [table.get(str(path), table.get(path.name)) for path in paths]
