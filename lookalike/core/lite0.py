"""EfficientNet-Lite0 in Keras, computing exactly what the published TensorFlow/PyTorch checkpoint computes.

Lite0 is EfficientNet-B0 made friendly to small devices: no squeeze-excitation, ReLU6, a fixed 32-channel stem and a
1,280-channel head. Padding is TensorFlow "SAME" (Keras `padding="same"`: the odd extra pixel goes bottom/right), BatchNorm
epsilon is 1e-3, and the input is `(x - 127) / 128` on 0-255 RGB. Weights are stored as `.npz` arrays keyed like the PyTorch
checkpoint (`_conv_stem.weight`, `_blocks.N._expand_conv.weight`, ...), so one loader serves the ImageNet backbone and every
model fine-tuned from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lookalike.core import settings
from lookalike.core.counters import count_load
from lookalike.core.digests import digests

# (kernel, stride, expand ratio, output channels, repeats) for the seven stages.
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3
BUNDLED_DIR = settings.MODELS_DIR / "efficientnet-lite0"


class BundledModelBroken(RuntimeError):
    """The bundled weights are missing, damaged or not the recorded file. The message says how to restore them."""


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand, in, out) of each of the 16 MBConv blocks."""
    specs, channels = [], STEM_CHANNELS
    for kernel, stride, expand, out, repeats in STAGES:
        for i in range(repeats):
            specs.append((kernel, stride if i == 0 else 1, expand, channels, out))
            channels = out
    return specs


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn_name: str, activate: bool, depthwise: bool = False):
    from keras import layers

    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=bn_name)(x)
    return layers.ReLU(6.0, name=f"{bn_name}_relu6")(x) if activate else x


def build(input_shape: tuple[int | None, int | None, int] = (224, 224, 3), classes: int | None = 1000,
          dropout: float = 0.2, name: str = "efficientnet_lite0"):
    """The Lite0 network on 0-255 RGB; `classes=None` ends at the pooled 1,280-d features."""
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="lite_preprocess")(inputs)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "_conv_stem", "_bn0", activate=True)
    for i, (kernel, stride, expand, cin, cout) in enumerate(block_specs()):
        prefix = f"_blocks.{i}."
        shortcut = x
        if expand != 1:
            x = _conv_bn(x, cin * expand, 1, 1, prefix + "_expand_conv", prefix + "_bn0", activate=True)
        x = _conv_bn(x, 0, kernel, stride, prefix + "_depthwise_conv", prefix + "_bn1", activate=True, depthwise=True)
        x = _conv_bn(x, cout, 1, 1, prefix + "_project_conv", prefix + "_bn2", activate=False)
        if stride == 1 and cin == cout:
            x = layers.Add(name=f"block{i}_add")([shortcut, x])
        x = layers.Identity(name=f"block{i}")(x)
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "_conv_head", "_bn1", activate=True)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if classes:
        x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(classes, name="_fc")(x)
    return keras.Model(inputs, x, name=name)


def keras_arrays(torch_keyed: Mapping[str, np.ndarray], layer_name: str, kind: str) -> list[np.ndarray] | None:
    """The weights of one Keras layer, taken from arrays keyed like the PyTorch checkpoint; None if absent."""
    get = torch_keyed.get
    if kind == "BatchNormalization":
        keys = [f"{layer_name}.{s}" for s in ("weight", "bias", "running_mean", "running_var")]
        return [np.asarray(torch_keyed[k], np.float32) for k in keys] if keys[0] in torch_keyed else None
    kernel = get(f"{layer_name}.weight")
    if kernel is None:
        return None
    kernel = np.asarray(kernel, np.float32)
    if kind == "Conv2D":
        return [kernel.transpose(2, 3, 1, 0)]
    if kind == "DepthwiseConv2D":
        return [kernel.transpose(2, 3, 0, 1)]
    if kind == "Dense":
        return [kernel.T, np.asarray(torch_keyed[f"{layer_name}.bias"], np.float32)]
    raise ValueError(f"no weights expected for {kind} layer {layer_name}")


def load_arrays(model, torch_keyed: Mapping[str, np.ndarray], require_head: bool = True) -> None:
    """Copy checkpoint arrays into the model, checking every shape; raise ValueError naming the first mismatch."""
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "BatchNormalization", "Dense"):
            continue
        arrays = keras_arrays(torch_keyed, layer.name, kind)
        if arrays is None:
            if kind == "Dense" and not require_head:
                continue
            raise ValueError(f"the weights file has no arrays for layer {layer.name!r}")
        expected = [tuple(w.shape) for w in layer.get_weights()]
        found = [a.shape for a in arrays]
        if expected != found:
            raise ValueError(f"layer {layer.name!r} expects shapes {expected}, the file has {found}")
        layer.set_weights(arrays)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Arrays from an .npz file, with pickles refused."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def weights_sha256(path: Path) -> str:
    """SHA-256 of a weights file, computed once per process for a given path, size and modification time."""
    return digests(path).sha256


def bundled_metadata(folder: Path = BUNDLED_DIR) -> dict:
    """The bundled model's metadata.json: where it came from and the SHA-256 its weights must have."""
    try:
        return json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundledModelBroken(
            f"The bundled EfficientNet-Lite0 metadata in {folder}/ is missing or unreadable ({error}). "
            "Restore it with `git checkout -- models/efficientnet-lite0`."
        ) from error


def bundled_arrays(folder: Path = BUNDLED_DIR) -> tuple[dict[str, np.ndarray], str]:
    """The bundled ImageNet weights and their SHA-256, refused unless the hash is the recorded one."""
    metadata = bundled_metadata(folder)
    path = folder / metadata.get("weights_file", "weights.npz")
    fix = "Restore it with `git checkout -- models/efficientnet-lite0` or rebuild it with `make lite0`."
    if not path.is_file():
        raise BundledModelBroken(f"The bundled EfficientNet-Lite0 weights {path} are missing. {fix}")
    found = weights_sha256(path)
    if found != metadata.get("weights_sha256"):
        raise BundledModelBroken(
            f"The bundled EfficientNet-Lite0 weights {path} are damaged: SHA-256 {found[:16]}…, "
            f"expected {str(metadata.get('weights_sha256'))[:16]}…. {fix}"
        )
    return read_npz(path), found


def bundled_backbone(input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
                     outputs: Sequence[str] | None = None):
    """The ImageNet Lite0 with the bundled weights, frozen; ending at ``outputs`` (layer names) or the pooled features.

    Returns ``(model, weights_sha256)``. Raises :class:`BundledModelBroken` with a user-facing message.
    """
    import keras

    arrays, digest = bundled_arrays()
    model = build(input_shape, classes=None)
    load_arrays(model, arrays, require_head=False)
    model.trainable = False
    count_load("efficientnet-lite0")
    if outputs:
        model = keras.Model(model.input, [model.get_layer(name).output for name in outputs], name="lite0_selected_layers")
    return model, digest
