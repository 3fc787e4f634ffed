"""The structure of a legacy Keras h5 weights file, read from its metadata alone.

Keras's published application weights use the legacy layout: ``layer_names`` at the root, one group
per layer with its ``weight_names``, loaded by position into the layers that have weights. Reading
that structure first lets a wrong or damaged file be named plainly instead of failing deep in Keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


class LayoutError(ValueError):
    """A file is not a readable legacy h5 weights file; the message says why."""


@dataclass(frozen=True)
class Structure:
    """Per layer with weights, in file order: its name and the shapes of its weights."""

    layers: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]

    @property
    def parameters(self) -> int:
        return sum(math.prod(shape) for _, shapes in self.layers for shape in shapes)


def read_structure(path: Path) -> Structure:
    """Layer names and weight shapes of ``path`` (no weight values are read)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            group = handle
            if "layer_names" not in handle.attrs and "model_weights" in handle:
                group = handle["model_weights"]  # a whole model saved by Keras 2
            if "layer_names" not in group.attrs:
                raise LayoutError(
                    f"{path} is not a Keras h5 weights file in the layout keras.applications publishes "
                    "(it has no layer_names)"
                )
            layers = []
            for name in _names(group.attrs["layer_names"]):
                weight_names = _names(group[name].attrs.get("weight_names", []))
                if weight_names:
                    layers.append((name, tuple(tuple(group[name][w].shape) for w in weight_names)))
    except LayoutError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise LayoutError(
            f"{path} is not a readable HDF5 weights file; it is truncated or damaged ({first_line(error)})"
        ) from error
    return Structure(tuple(layers))


def model_structure(model) -> Structure:
    """What a Keras model expects from a legacy file, in Keras's legacy loading order."""
    return Structure(
        tuple(
            (layer.name, tuple(tuple(w.shape) for w in layer.trainable_weights + layer.non_trainable_weights))
            for layer in model.layers
            if layer.trainable_weights + layer.non_trainable_weights
        )
    )


def first_mismatch(found: Structure, expected: Structure) -> str | None:
    """Where ``found`` (a file) differs from ``expected`` (a model), in words; None when they fit."""
    if len(found.layers) != len(expected.layers):
        return f"the file holds {len(found.layers)} layers with weights, the model has {len(expected.layers)}"
    for (name, shapes), (model_name, model_shapes) in zip(found.layers, expected.layers, strict=True):
        if shapes != model_shapes:
            return f"layer {name} holds shapes {list(shapes)}, the model's {model_name} needs {list(model_shapes)}"
    return None


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _names(values) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
