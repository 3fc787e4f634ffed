"""What a search asks with: one or more references, their mean, and the trail of recent queries.

A reference is an uploaded image (embedded once) or an item of the collection, which brings its stored vector:
searching from a result or a map point needs no upload and no model call. Several references make one query,
the normalised mean of their vectors. The trail keeps the last few queries so a user can step back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.core.vectors import mean_direction
from lookalike.search.folders import Collection

TRAIL_LIMIT = 6  # queries kept for stepping back


def combined_vector(vectors: np.ndarray) -> np.ndarray:
    """The query of one or more reference vectors: one is the query itself, as it always was (so it ranks
    exactly as before); several give the normalised mean of their unit vectors, each counting equally."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors[0] if len(vectors) == 1 else mean_direction(vectors)


@dataclass(frozen=True, eq=False)
class Reference:
    """One image a query is made of. ``key`` tells references apart; ``vector`` is its compact style vector."""

    key: str
    label: str
    vector: np.ndarray
    thumbnail: np.ndarray | None = None  # an upload's picture (uploads have no file to show)
    path: Path | None = None  # an item's file

    @classmethod
    def upload(cls, data: bytes, label: str, vector: np.ndarray, thumbnail: np.ndarray) -> Reference:
        """An uploaded image, known by its content (never by its name)."""
        key = "upload:" + hashlib.sha256(data).hexdigest()[:24]
        return cls(key, label, np.asarray(vector, np.float32), thumbnail=thumbnail)

    @classmethod
    def item(cls, collection: Collection, row: int, label: str) -> Reference:
        """An item of the collection, with the vector the collection stores for it."""
        path = collection.paths[row]
        return cls(cls.item_key(path), label, collection.vectors[row].copy(), path=path)

    @staticmethod
    def item_key(path: Path) -> str:
        """The key of the collection item at ``path`` (to ask whether a query holds it)."""
        return f"item:{path}"


@dataclass(frozen=True, eq=False)
class Query:
    """References searched for together: their normalised mean vector is the query."""

    references: tuple[Reference, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(reference.key for reference in self.references)

    @property
    def label(self) -> str:
        return " + ".join(reference.label for reference in self.references)

    def vector(self) -> np.ndarray:
        return combined_vector(np.stack([reference.vector for reference in self.references]))

    def adding(self, reference: Reference) -> Query:
        """This query with one more reference (the same one twice counts once)."""
        if reference.key in self.keys:
            return self
        return Query((*self.references, reference))

    def without(self, key: str) -> Query:
        return Query(tuple(reference for reference in self.references if reference.key != key))

    def same_as(self, other: Query | None) -> bool:
        return other is not None and self.keys == other.keys


@dataclass
class Trail:
    """The last ``limit`` queries on one collection (folder, model id), newest last: the breadcrumb.

    ``version`` changes with every step, so a widget keyed by it (the map) starts fresh for each query.
    """

    collection_key: tuple[str, str]
    steps: list[Query] = field(default_factory=list)
    limit: int = TRAIL_LIMIT
    version: int = 0
    showing: bool = True  # False after a failed search: no results until the next step

    @property
    def current(self) -> Query | None:
        return self.steps[-1] if self.steps and self.showing else None

    def go(self, query: Query) -> None:
        """Make ``query`` the current one (a repeat of the current query adds no step)."""
        if not query.references:
            raise ValueError("a query needs at least one reference")
        if not (self.steps and query.same_as(self.steps[-1])):
            self.steps.append(query)
            del self.steps[: -self.limit]
        self._moved()

    def back(self) -> None:
        """Step back to the previous query."""
        if len(self.steps) > 1:
            self.steps.pop()
        self._moved()

    def jump(self, index: int) -> None:
        """Go back to step ``index`` of the breadcrumb, dropping the steps after it."""
        if not 0 <= index < len(self.steps):
            raise IndexError(f"no step {index} in a trail of {len(self.steps)}")
        del self.steps[index + 1 :]
        self._moved()

    def hide(self) -> None:
        """Show no results (a search failed), keeping the steps to go back to."""
        self.showing = False
        self.version += 1

    def _moved(self) -> None:
        self.showing = True
        self.version += 1
