"""P@10 by class on the clothing photos: 341 validation photos as queries against the 3,068 train photos.

Every method is scored the same way: cosine top 10, the fraction sharing the query's class, averaged within
each class and then over classes (see ``lookalike.core.vectors.precision_by_class``; chance is 0.1). The
methods are the VAE's ``z_mean``, raw pixels at the VAE's resolution, PCA at the VAE's latent size and, where
a pretrained backbone is available, its pooled features.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.core.files import write_text_atomic
from lookalike.core.progress import Progress
from lookalike.core.vectors import hits_at_k, precision_by_class
from lookalike.datasets.catalog import Catalog
from lookalike.domain import CLOTHING_PHOTOS
from lookalike.vae.catalogs import load_catalog, load_clothing_photos
from lookalike.vae.checkpoints import METADATA_FILE, Checkpoint
from lookalike.vae.features import FeatureEmbedder, catalog_features

K = 10


@dataclass
class Row:
    """One method's P@10: per class, balanced (mean over classes) and over all queries."""

    name: str
    dims: int
    per_class: np.ndarray
    balanced: float
    overall: float

    def as_json(self) -> dict[str, object]:
        return {"dims": self.dims, "p@10_by_class": round(self.balanced, 4), "p@10_all_queries": round(self.overall, 4)}


def photo_sets() -> tuple[Catalog, Catalog]:
    """The catalog (train photos) and the queries (validation photos), in the VAE's domain."""
    return load_catalog(CLOTHING_PHOTOS), load_clothing_photos("validation")


def score_vectors(name: str, catalog_vectors: np.ndarray, query_vectors: np.ndarray,
                  catalog: Catalog, queries: Catalog) -> Row:
    hits = hits_at_k(catalog_vectors, catalog.labels, query_vectors, queries.labels, K)
    per_class = precision_by_class(hits, queries.labels, len(catalog.class_names))
    return Row(name, int(np.shape(catalog_vectors)[1]), per_class, float(np.nanmean(per_class)), float(hits.mean()))


def photo_scores(name: str, embed: Callable[[np.ndarray], np.ndarray]) -> Row:
    """Score a method that maps domain images (uint8, N×96×96×3) to vectors."""
    catalog, queries = photo_sets()
    return score_vectors(name, embed(catalog.images), embed(queries.images), catalog, queries)


def pixel_rows(dims: int) -> list[Row]:
    """Raw pixels (flattened, in [0, 1]) and PCA of them at ``dims`` components, fitted on the catalog."""
    from sklearn.decomposition import PCA

    catalog, queries = photo_sets()
    flat_catalog = catalog.images.reshape(len(catalog), -1).astype(np.float32) / 255.0
    flat_queries = queries.images.reshape(len(queries), -1).astype(np.float32) / 255.0
    pca = PCA(n_components=dims, random_state=0).fit(flat_catalog)
    side = catalog.images.shape[1]
    return [
        score_vectors(f"raw pixels {side}×{side}", flat_catalog, flat_queries, catalog, queries),
        score_vectors(f"PCA-{dims} of pixels", pca.transform(flat_catalog), pca.transform(flat_queries),
                      catalog, queries),
    ]


def features_row(embedder: FeatureEmbedder, progress: Progress | None = None) -> Row:
    """Pooled features of the original photos (catalog and queries, through the shared cache)."""
    catalog, queries = photo_sets()
    catalog_vectors = catalog_features(embedder, catalog, progress)
    query_vectors = catalog_features(embedder, queries, progress)
    return score_vectors(f"{embedder.backbone.name} pooled features", catalog_vectors, query_vectors, catalog, queries)


RECORD_COMMAND = "python vae.py evaluate --data clothing-photos --baselines --record"


def record_comparison(checkpoint: Checkpoint, rows: dict[str, Row], model_ids: dict[str, str],
                      class_names: Sequence[str]) -> None:
    """Write the rows into the model's metadata.json (``comparison``), where the page reads each mode's P@10.

    Only the metadata changes: the weights, and with them the model id and every cache key, stay the same.
    """
    path = checkpoint.weights_path.parent / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["comparison"] = {
        key: {"name": row.name, **row.as_json(), **({"model_id": model_ids[key]} if key in model_ids else {}),
              "per_class": {name: round(float(value), 4) for name, value
                            in zip(class_names, row.per_class, strict=True)}}
        for key, row in rows.items()
    }
    metadata["comparison_command"] = RECORD_COMMAND
    write_text_atomic(path, json.dumps(metadata, indent=2) + "\n")
    checkpoint.metadata.update(comparison=metadata["comparison"], comparison_command=RECORD_COMMAND)


def markdown_table(rows: Sequence[Row]) -> str:
    """Classes down, methods across; then the mean over classes (bold for the best), all queries, chance."""
    catalog, queries = photo_sets()
    counts = np.bincount(queries.labels, minlength=len(catalog.class_names))
    lines = [f"| class (queries) | {' | '.join(f'{row.name} ({row.dims}-d)' for row in rows)} |",
             "|---" * (len(rows) + 1) + "|"]
    for index, name in enumerate(catalog.class_names):
        lines.append(f"| {name} ({counts[index]}) | {' | '.join(f'{row.per_class[index]:.3f}' for row in rows)} |")
    best = max(row.balanced for row in rows)
    balanced = [f"**{row.balanced:.3f}**" if row.balanced == best else f"{row.balanced:.3f}" for row in rows]
    lines.append(f"| **P@{K} by class (mean over classes)** | {' | '.join(balanced)} |")
    lines.append(f"| all {int(counts.sum())} queries | {' | '.join(f'{row.overall:.3f}' for row in rows)} |")
    lines.append(f"| chance (by class) | {' | '.join(f'{1 / len(catalog.class_names):.3f}' for _ in rows)} |")
    return "\n".join(lines)
