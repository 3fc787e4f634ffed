"""Pretrained ImageNet weights: which file ``LOOKALIKE_WEIGHTS`` asks for, where it is found, and a
message for people when it is missing."""

from __future__ import annotations

from pathlib import Path

from lookalike.core import settings
from lookalike.core.files import file_sha256


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be found or downloaded. The message says where to put them."""

    def __init__(self, model: str, filename: str, reason: str):
        self.model, self.filename, self.reason = model, filename, reason
        super().__init__(
            f"The {model} ImageNet weights could not be loaded ({reason}). "
            f"Download `{filename}` and put it in `{settings.MODELS_DIR}/` or in `~/.keras/models/`, "
            f"or set LOOKALIKE_WEIGHTS to a weights file. "
            f"To try the app without them, set LOOKALIKE_WEIGHTS=random."
        )


def weights_label(current: settings.Settings | None = None) -> str:
    """A short, stable name for the weights in use, for cache keys and captions."""
    weights = (current or settings.get_settings()).weights
    if weights in ("imagenet", "random"):
        return weights
    path = Path(weights)
    digest = file_sha256(path)[:12] if path.is_file() else "missing"
    return f"file:{path.name}:{digest}"


def resolve_pretrained_weights(model: str, filename: str, url: str) -> str | None:
    """Turn the ``LOOKALIKE_WEIGHTS`` setting into what keras.applications takes as ``weights=``.

    ``random`` gives ``None``; a file path or a file dropped in ``models/`` gives that path;
    ``imagenet`` downloads once into the Keras cache and raises :class:`WeightsUnavailable` on failure.
    """
    weights = settings.get_settings().weights
    if weights == "random":
        return None
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(model, filename, f"LOOKALIKE_WEIGHTS points at {path}, which does not exist")
        return str(path)
    for folder in (settings.MODELS_DIR, Path.home() / ".keras" / "models"):
        if (folder / filename).is_file():
            return str(folder / filename)
    try:
        from keras.utils import get_file

        return get_file(filename, url, cache_subdir="models")
    except Exception as error:
        raise WeightsUnavailable(model, filename, f"download failed: {type(error).__name__}") from error
