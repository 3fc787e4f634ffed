"""Fashion-MNIST: 70,000 grey 28×28 product images in 10 classes.

Read from Debian's ``dataset-fashion-mnist`` files (``/usr/share/datasets/fashion-mnist``), else
downloaded by ``keras.datasets``.
"""

from __future__ import annotations

import gzip
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

from lookalike.datasets.catalog import Catalog, CatalogError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_SOURCE = (
    "Fashion-MNIST (Zalando Research, MIT licence): 70,000 greyscale 28×28 product images in 10 classes; "
    "github.com/zalandoresearch/fashion-mnist. Read from the Debian files in "
    f"{FASHION_MNIST_DIR} or downloaded by keras.datasets."
)


def read_idx(path: str | Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file, the MNIST container format, into a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4:
        raise CatalogError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise CatalogError(f"{path} is not an unsigned-byte IDX file.")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise CatalogError(f"{path} holds {body.size} bytes, expected {int(np.prod(shape))}.")
    return body.reshape(shape)


@lru_cache(maxsize=2)
def load_fashion_mnist(split: str = "train") -> Catalog:
    """The Fashion-MNIST ``train`` (the catalog) or ``test`` (the queries) split, 28×28×1 uint8."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images_path = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if images_path.is_file() and labels_path.is_file():
        images, labels = read_idx(images_path), read_idx(labels_path)
    else:
        images, labels = _fashion_mnist_from_keras(split)
    captions = [FASHION_CLASSES[label] for label in labels]
    return Catalog(
        name="fashion-mnist",
        images=images[..., None],
        labels=labels.astype(np.int64),
        class_names=FASHION_CLASSES,
        captions=captions,
        sources=[FASHION_SOURCE],
    )


def _fashion_mnist_from_keras(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from keras.datasets import fashion_mnist

        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    except Exception as error:  # any failure means "not available"
        raise CatalogError(
            f"Fashion-MNIST is not in {FASHION_MNIST_DIR} and the download failed ({error}). "
            "Install it with `sudo apt-get install fashion-mnist` or connect to the internet."
        ) from error
    return (x_train, y_train) if split == "train" else (x_test, y_test)


# ---------------------------------------------------------------------------------------------
# Sweet Home 3D furniture
# ---------------------------------------------------------------------------------------------
