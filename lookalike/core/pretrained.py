"""Keras application models built from a resolved weights file, exactly as Keras's ImageNet models.

``keras.applications.EfficientNetB0(weights=<path>)`` leaves out a Rescaling layer that Keras adds
only for ``weights="imagenet"`` (the published Normalization layer holds standard deviations where a
variance belongs; tensorflow/tensorflow#49930). :func:`keras_application` puts it back, so a model
from a file computes what Keras's own ImageNet model computes with the same file.
"""

from __future__ import annotations

import math

from lookalike.core.h5_layout import LayoutError, first_line, first_mismatch, model_structure, read_structure
from lookalike.core.weights import IMAGENET_STDDEV_RGB, PUBLISHED, Resolved, WeightsUnavailable, replace_fix


def keras_application(key: str, resolved: Resolved, **kwargs):
    """``keras.applications.<model>(weights=None, **kwargs)`` loaded with ``resolved``'s file (if any)."""
    import keras

    model = getattr(keras.applications, PUBLISHED[key].model)(weights=None, **kwargs)
    if resolved.path is not None and key.startswith("efficientnet"):
        model = with_imagenet_rescaling(model)
    load_into(model, resolved)
    return model


def load_into(model, resolved: Resolved) -> None:
    """Load ``resolved``'s file into ``model``, turning every failure into one clear message."""
    if resolved.path is None:
        return
    spec = resolved.spec
    fix = replace_fix(spec, resolved.source)
    try:
        mismatch = first_mismatch(read_structure(resolved.path), model_structure(model))
    except LayoutError as error:
        raise WeightsUnavailable(spec.model, spec.filename, f"{error}.", fix) from error
    if mismatch:
        raise WeightsUnavailable(
            spec.model, spec.filename, f"{resolved.path} does not fit {spec.model}: {mismatch}.", fix
        )
    try:
        model.load_weights(str(resolved.path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsUnavailable(
            spec.model, spec.filename, f"{resolved.path} could not be loaded ({first_line(error)}).", fix
        ) from error


def with_imagenet_rescaling(model):
    """A copy of an EfficientNet with Keras's ImageNet Rescaling right after its Normalization layer."""
    import keras

    def call(layer, *args, **kwargs):
        output = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.Normalization):
            output = keras.layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB])(output)
        return output

    # Fresh layers (the default clone), so that each layer's ``.output`` belongs to the new graph.
    inputs = keras.Input(model.input.shape[1:], name=model.layers[0].name)
    rebuilt = keras.models.clone_model(model, input_tensors=inputs, call_function=call)
    rebuilt.name = model.name
    return rebuilt
