"""Style transfer's feature stack: VGG19 up to ``block5_conv2`` as plain TensorFlow ops, with compiled
loss-and-gradient steps.

* Features come from the same VGG19 as the style embeddings (``vgg19.vgg19_backbone``): content
  ``block5_conv2``, style ``block1_conv1`` … ``block5_conv1``. The convolutions run in bfloat16 by default
  (AVX512-BF16 CPUs run it about twice as fast as float32); Gram matrices and losses are always float32.
* Losses are *relative*: each style layer's Gram error is divided by the mean square of its target Gram,
  the content error by the mean square of the target features. Weights therefore mean the same thing with
  ImageNet or random weights, and the default ``style_weight`` / ``content_weight`` ratio is 1.
* Each step is one TensorFlow call that releases the GIL; the compiled step function is shared by every
  thread, so concurrent runs need no lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.core.counters import count_inference
from lookalike.style.vgg19 import CONTENT_LAYER, STYLE_LAYERS, VGG_MEAN_BGR, gram_matrix, vgg19_backbone


@dataclass(frozen=True)
class Losses:
    """Weighted loss parts of one image (style and content are relative errors, see the module doc)."""

    style: float
    content: float
    tv: float
    total: float

    def as_dict(self) -> dict[str, float]:
        return {"style": self.style, "content": self.content, "tv": self.tv, "total": self.total}


@dataclass(frozen=True)
class Weights:
    style: float
    content: float
    tv: float

    def vector(self) -> np.ndarray:
        return np.array([self.style, self.content, self.tv], dtype=np.float32)


# ---------------------------------------------------------------------------------------------

class TransferModel:
    """VGG19 up to ``block5_conv2`` as plain TF ops, with compiled loss-and-gradient steps.

    Thread-safe: the weights are constants and every call passes its own targets, so one instance can
    serve all threads (build it once, e.g. through ``st.cache_resource``).
    """

    def __init__(self, backbone=None, compute_dtype: str = "bfloat16"):
        import tensorflow as tf

        backbone = backbone if backbone is not None else vgg19_backbone()
        self.compute_dtype = compute_dtype
        self.convs = _conv_weights(backbone)
        self._cast = {
            "float32": [(n, tf.constant(k), tf.constant(b)) for n, k, b in self.convs],
            "bfloat16": [
                (n, tf.constant(k, tf.bfloat16), tf.constant(b, tf.bfloat16)) for n, k, b in self.convs
            ],
        }
        image = tf.TensorSpec((1, None, None, 3), tf.float32)
        grams = [tf.TensorSpec((None, None), tf.float32) for _ in STYLE_LAYERS]
        content = tf.TensorSpec((1, None, None, None), tf.float32)
        weights = tf.TensorSpec((3,), tf.float32)
        self._steps = {
            dtype: tf.function(
                lambda x, g, c, w, dtype=dtype: self._loss_and_grad(x, g, c, w, dtype),
                input_signature=[image, grams, content, weights],
                autograph=False,
            )
            for dtype in self._cast
        }
        self._targets = {
            dtype: tf.function(
                lambda x, dtype=dtype: self._target_graph(x, dtype), input_signature=[image], autograph=False
            )
            for dtype in self._cast
        }

    def _features(self, image, dtype: str):
        """Pixels (1, H, W, 3) RGB in [0, 255] -> [5 style maps, content map], float32."""
        import tensorflow as tf

        x = tf.cast(image[..., ::-1] - VGG_MEAN_BGR, dtype)
        wanted = (*STYLE_LAYERS, CONTENT_LAYER)
        outputs, block = [], "block1"
        for name, kernel, bias in self._cast[dtype]:
            if not name.startswith(block + "_"):
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
                block = name.split("_")[0]
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))
            if name in wanted:
                outputs.append(tf.cast(x, tf.float32))
        return outputs

    def _target_graph(self, image, dtype: str):
        features = self._features(image, dtype)
        return [gram_matrix(f)[0] for f in features[:-1]], features[-1]

    def _loss_parts(self, image, style_grams, content_target, dtype: str):
        import tensorflow as tf

        features = self._features(image, dtype)
        style = tf.add_n(
            [
                tf.reduce_mean(tf.square(gram_matrix(f)[0] - g))
                / tf.maximum(tf.reduce_mean(tf.square(g)), 1e-20)
                for f, g in zip(features[:-1], style_grams, strict=True)
            ]
        ) / len(style_grams)
        content = tf.reduce_mean(tf.square(features[-1] - content_target)) / tf.maximum(
            tf.reduce_mean(tf.square(content_target)), 1e-20
        )
        pixels = image / 255.0
        tv = tf.reduce_mean(tf.square(pixels[:, 1:] - pixels[:, :-1])) + tf.reduce_mean(
            tf.square(pixels[:, :, 1:] - pixels[:, :, :-1])
        )
        return tf.stack([style, content, tv])

    def _loss_and_grad(self, image, style_grams, content_target, weights, dtype: str):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(image)
            parts = self._loss_parts(image, style_grams, content_target, dtype) * weights
            total = tf.reduce_sum(parts)
        return parts, tape.gradient(total, image)

    def targets(self, image: np.ndarray, dtype: str | None = None) -> tuple[list, object]:
        """Style Gram matrices and content features of one RGB image (H, W, 3) in [0, 255]."""
        count_inference("vgg19")
        return self._targets[dtype or self.compute_dtype](_batch(image))

    def step(self, image: np.ndarray, target: Target, weights: Weights, dtype: str | None = None):
        """Weighted loss parts (3,) and the gradient of their sum w.r.t. the pixels, as numpy arrays."""
        count_inference("vgg19")
        step = self._steps[dtype or self.compute_dtype]
        parts, grad = step(_batch(image), target.grams, target.content, weights.vector())
        return parts.numpy().astype(np.float64), grad.numpy()[0]

    def losses(self, image: np.ndarray, target: Target, weights: Weights, dtype: str | None = None) -> Losses:
        parts, _ = self.step(image, target, weights, dtype)
        return Losses(*map(float, parts), total=float(parts.sum()))


def _conv_weights(backbone) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, kernel, bias) of every VGG19 convolution up to the content layer."""
    convs = []
    for layer in backbone.layers:
        if "conv" in layer.name:
            kernel, bias = layer.get_weights()
            convs.append((layer.name, kernel.astype(np.float32), bias.astype(np.float32)))
            if layer.name == CONTENT_LAYER:
                return convs
    raise ValueError("The backbone has no layer named " + CONTENT_LAYER)


def _batch(image: np.ndarray):
    import tensorflow as tf

    return tf.convert_to_tensor(np.asarray(image, dtype=np.float32)[None])


@dataclass
class Target:
    """What one pyramid level is optimised towards."""

    grams: list
    content: object
    shape: tuple[int, int]


def make_target(model: TransferModel, content: np.ndarray, style: np.ndarray, dtype: str | None = None) -> Target:
    """Targets for an output of ``content``'s shape; the style is resized to the same long side."""
    grams, _ = model.targets(style, dtype)
    _, features = model.targets(content, dtype)
    return Target(grams=grams, content=features, shape=content.shape[:2])


# ---------------------------------------------------------------------------------------------
# Images
