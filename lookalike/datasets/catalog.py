"""A catalog: images in a model's domain with one label and caption per item, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class CatalogError(RuntimeError):
    """A catalog cannot be loaded. The message is meant for people and says what to install."""


@dataclass
class Catalog:
    """Images in the model's domain (uint8, N×H×W×C) with one label and caption per item."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    captions: list[str]
    creators: list[str] | None = None
    licences: list[str] | None = None
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    paths: list[Path] | None = None  # the original files, for catalogs made of photos

    def __len__(self) -> int:
        return len(self.images)

    def category(self, index: int) -> str:
        return self.class_names[int(self.labels[index])]

