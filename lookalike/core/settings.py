"""Every environment-driven setting of the app, read in one place, and the project's fixed folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = PROJECT_ROOT / "models"
# A weights file of one's own for one model (see ``lookalike.core.weights``), by model key.
OWN_WEIGHTS_VARIABLES = {
    "vgg19": "LOOKALIKE_VGG19_WEIGHTS",
    "efficientnetb0": "LOOKALIKE_EFFICIENTNETB0_WEIGHTS",
}
DEFAULT_DOWNLOAD_TIMEOUT = 30.0  # seconds without a byte before a download is given up


@dataclass(frozen=True)
class Settings:
    """The ``LOOKALIKE_*`` variables, parsed."""

    weights: str  # "imagenet", "random" or (older form) a path to a weights file
    mirror: str | None  # base URL or folder that replaces the public download hosts
    roots: tuple[Path, ...]  # folders that users may index; empty means anywhere
    cache_dir: Path  # where embeddings, maps and downloads are kept
    style_model: str = "auto"  # "auto", "vgg19" or "lite0": the network style vectors come from
    own_weights: tuple[tuple[str, Path], ...] = ()  # (model key, file) from LOOKALIKE_<MODEL>_WEIGHTS
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT  # LOOKALIKE_DOWNLOAD_TIMEOUT, seconds

    def own_weights_for(self, key: str) -> Path | None:
        return dict(self.own_weights).get(key)

    @property
    def random_weights(self) -> bool:
        return self.weights == "random"


def get_settings() -> Settings:
    """Read ``LOOKALIKE_*`` variables. Cheap, so callers read it when they need it (tests change them)."""
    weights = os.environ.get("LOOKALIKE_WEIGHTS", "imagenet").strip() or "imagenet"
    mirror = os.environ.get("LOOKALIKE_MIRROR", "").strip() or None
    roots = tuple(
        Path(p).expanduser().resolve()
        for p in os.environ.get("LOOKALIKE_ROOTS", "").split(os.pathsep)
        if p.strip()
    )
    cache_dir = Path(
        os.environ.get("LOOKALIKE_CACHE", "") or Path.home() / ".cache" / "lookalike"
    ).expanduser()
    style_model = os.environ.get("LOOKALIKE_STYLE_MODEL", "").strip().lower() or "auto"
    own_weights = tuple(
        (key, Path(value).expanduser())
        for key, variable in OWN_WEIGHTS_VARIABLES.items()
        if (value := os.environ.get(variable, "").strip())
    )
    return Settings(
        weights=weights,
        mirror=mirror,
        roots=roots,
        cache_dir=cache_dir,
        style_model=style_model,
        own_weights=own_weights,
        download_timeout=_positive(
            os.environ.get("LOOKALIKE_DOWNLOAD_TIMEOUT", ""), DEFAULT_DOWNLOAD_TIMEOUT
        ),
    )


def _positive(raw: str, default: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default
