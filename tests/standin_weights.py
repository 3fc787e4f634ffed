"""Stand-ins for Keras's published ImageNet weight files, written at test time.

The real files cannot be downloaded here, so tests use files in exactly their layout, filled with
seeded values that differ from Keras's random initialisation:

* ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` was written by Keras 1: ``layer_names`` at the
  root (the input and pooling layers included, with empty ``weight_names``), no ``keras_version`` or
  ``backend`` attribute, and weights named ``block1_conv1_W_1:0`` / ``block1_conv1_b_1:0``;
* ``efficientnetb0_notop.h5`` was written by tf.keras 2: ``keras_version`` and ``backend`` attributes,
  weights named ``stem_conv/kernel:0`` (so stored one group deeper), depthwise kernels named
  ``depthwise_kernel``, and the stem ``Normalization`` stored as ``mean``/``variance``/``count`` with
  ImageNet's mean and, as in the published file, its standard deviations as the variance.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from lookalike.core import weights
from lookalike.core.weights import IMAGENET_STDDEV_RGB, PUBLISHED
from tests.paths import SHARED_DATA

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
EFFICIENTNET_KERAS_VERSION = "2.4.0"  # tf.keras 2.3 era, when the EfficientNet files were published


def keras_layers(key: str) -> list:
    """The layers of the Keras model the file is for, in Keras's saving order (random weights)."""
    import keras

    model = getattr(keras.applications, PUBLISHED[key].model)(include_top=False, weights=None)
    return list(model.layers)


def _legacy_weights(layer) -> list:
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _value(rng: np.random.Generator, layer, variable) -> np.ndarray:
    """Seeded values in each weight's natural range, so that deep stacks stay numerically sane."""
    shape = tuple(variable.shape)
    name = variable.name
    if layer.__class__.__name__ == "Normalization":
        return {
            "mean": np.asarray(IMAGENET_MEAN_RGB, np.float32),
            "variance": np.asarray(IMAGENET_STDDEV_RGB, np.float32),
            "count": np.asarray(1_281_167, np.int64),
        }[name]
    if name == "gamma":
        return rng.uniform(0.7, 1.3, shape).astype(np.float32)
    if name == "moving_variance":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if name in ("beta", "moving_mean", "bias"):
        return rng.normal(0.0, 0.05, shape).astype(np.float32)
    fan_in = int(np.prod(shape[:-1])) if layer.__class__.__name__ != "DepthwiseConv2D" else int(np.prod(shape[:2]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)


# Layers Keras names automatically get a process-wide counter ("normalization_3"); the files hold the
# names of a fresh process.
_AUTO_NAMES = {"InputLayer": "input_1", "Rescaling": "rescaling", "Normalization": "normalization"}


def _published_name(layer) -> str:
    return _AUTO_NAMES.get(layer.__class__.__name__, layer.name)


def _weight_name(key: str, layer, variable) -> str:
    if key == "vgg19":  # Keras 1 names
        return f"{layer.name}_{'W' if variable.name == 'kernel' else 'b'}_1:0"
    name = "depthwise_kernel" if layer.__class__.__name__ == "DepthwiseConv2D" else variable.name
    return f"{_published_name(layer)}/{name}:0"


def write_standin(key: str, path: Path, seed: int = 7, layers: list | None = None) -> dict[str, list[np.ndarray]]:
    """Write a stand-in for ``PUBLISHED[key]`` at ``path``; returns the values written, by layer name."""
    import h5py

    layers = layers if layers is not None else keras_layers(key)
    rng = np.random.default_rng(seed)
    names = [_published_name(layer) for layer in layers]
    written: dict[str, list[np.ndarray]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        if key != "vgg19":
            handle.attrs["backend"] = b"tensorflow"
            handle.attrs["keras_version"] = EFFICIENTNET_KERAS_VERSION.encode("utf8")
        for name, layer in sorted(zip(names, layers, strict=True)):
            group = handle.create_group(name)
            variables = _legacy_weights(layer)
            weight_names = [_weight_name(key, layer, v) for v in variables]
            group.attrs["weight_names"] = np.array([w.encode("utf8") for w in weight_names])
            values = [_value(rng, layer, v) for v in variables]
            for weight_name, value in zip(weight_names, values, strict=True):
                group.create_dataset(weight_name, data=value)
            if values:
                written[name] = values
    return written


def md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    """A copy of ``source`` cut after ``keep`` of its bytes, as an interrupted copy leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def zero_block(source: Path, target: Path, size: int = 4 << 20) -> Path:
    """A copy of ``source`` with ``size`` bytes zeroed in the middle, where the weight data lies."""
    data = bytearray(source.read_bytes())
    start = len(data) // 2 - size // 2
    data[start : start + size] = bytes(min(size, len(data) - start))
    target.write_bytes(bytes(data))
    return target


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@dataclass
class Standins:
    """Stand-in files laid out as on a mirror (``<root>/keras-applications/...``), with their values."""

    root: Path
    values: dict[str, dict[str, list[np.ndarray]]]

    def path(self, key: str) -> Path:
        return self.root / PUBLISHED[key].relative

    def md5(self, key: str) -> str:
        return md5(self.path(key))


@pytest.fixture(scope="session")
def standins(tmp_path_factory) -> Standins:
    """Both published files as seeded stand-ins, written once per run (about 100 MB in a temp folder)."""
    root = tmp_path_factory.mktemp("standin-mirror")
    values = {key: write_standin(key, root / spec.relative, seed=7) for key, spec in PUBLISHED.items()}
    for entry in SHARED_DATA.iterdir():  # the shared data next to them: one mirror for datasets and weights
        (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return Standins(root, values)


@pytest.fixture(scope="session")
def other_vgg19(tmp_path_factory) -> Path:
    """A second VGG19 stand-in with other values (seed 8): "the weights file changed"."""
    path = tmp_path_factory.mktemp("other-vgg19") / PUBLISHED["vgg19"].filename
    write_standin("vgg19", path, seed=8)
    return path


@dataclass
class ImagenetSetup:
    """``LOOKALIKE_WEIGHTS=imagenet`` with private ``models/`` and Keras cache folders, and the stand-ins'
    hashes in place of Keras's published ones (the stand-ins stand for the published files)."""

    models: Path
    keras_cache: Path
    standins: Standins

    def place(self, key: str, folder: Path, source: Path | None = None) -> Path:
        target = folder / PUBLISHED[key].filename
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source or self.standins.path(key), target)
        return target


@pytest.fixture
def imagenet(monkeypatch, tmp_path, standins) -> ImagenetSetup:
    for key, spec in PUBLISHED.items():
        monkeypatch.setitem(weights.PUBLISHED, key, replace(spec, md5=standins.md5(key)))
    models, keras_home = tmp_path / "models", tmp_path / "keras-home"
    models.mkdir()
    monkeypatch.setattr(weights, "MODELS_DIR", models)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "imagenet")
    monkeypatch.setenv("LOOKALIKE_MIRROR", "http://127.0.0.1:9")  # never the public hosts from a test
    for spec in PUBLISHED.values():
        monkeypatch.delenv(spec.variable, raising=False)
    weights.forget_failures()
    yield ImagenetSetup(models, keras_home / "models", standins)
    weights.forget_failures()


class _FaultyMirror(http.server.SimpleHTTPRequestHandler):
    """``/good/<path>`` serves the folder; ``/cut/<path>`` stops half-way; ``/missing/<path>`` is a 404.

    ``requests`` counts the requests per mode, so tests can tell whether a download was attempted."""

    requests: dict[str, int] = {}

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        mode, _, rest = self.path.lstrip("/").partition("/")
        _FaultyMirror.requests[mode] = _FaultyMirror.requests.get(mode, 0) + 1
        self.path = "/" + rest
        if mode == "good":
            super().do_GET()
        elif mode == "cut":
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404, "Not Found")


def mirror_requests(mode: str) -> int:
    """How many requests the loopback mirror has answered under ``<base>/<mode>`` so far."""
    return _FaultyMirror.requests.get(mode, 0)


@pytest.fixture(scope="session")
def weights_server(standins):
    """A loopback HTTP mirror of ../shared/data plus the stand-ins; returns its base URL.

    Mirrors: ``<base>/good`` (works), ``<base>/cut`` (each file cut half-way), ``<base>/missing`` (404).
    """
    handler = functools.partial(_FaultyMirror, directory=str(standins.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def stalled_server():
    """A loopback port that accepts connections and never answers (a proxy that hangs)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def leftovers(folder: Path) -> list[Path]:
    """Files left in ``folder`` (partial downloads included)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def keras_imagenet(monkeypatch, tmp_path, standins):
    """``keras.applications.X(weights="imagenet")`` on the stand-ins: a private Keras cache folder
    pre-seeded with them under the published names. Keras still checks each file's hash, against the
    stand-in's (the published hashes belong to the real files). Returns ``make(key, **kwargs)``."""
    import keras
    from keras.src.backend import config
    from keras.src.utils import file_utils

    home = tmp_path / "keras-reference"
    for key, spec in PUBLISHED.items():
        (home / "models").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(standins.path(key), home / "models" / spec.filename)
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    hashes = {spec.filename: standins.md5(key) for key, spec in PUBLISHED.items()}
    check = file_utils.validate_file

    def validate(fpath, file_hash, algorithm="auto", chunk_size=65535):
        return check(fpath, hashes[Path(fpath).name], algorithm, chunk_size)

    monkeypatch.setattr(file_utils, "validate_file", validate)

    def make(key: str, **kwargs):
        return getattr(keras.applications, PUBLISHED[key].model)(weights="imagenet", **kwargs)

    return make
