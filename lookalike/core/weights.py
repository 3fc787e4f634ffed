"""The ImageNet weight files: which exist, where they are found, how they are fetched and checked.

This module alone knows each file Keras publishes for the models of the app (name, URL, Keras's own
``file_hash``). A file is looked for in ``models/``, then in the Keras cache (``$KERAS_HOME/models``,
else ``~/.keras/models``), then downloaded from the public host or from ``LOOKALIKE_MIRROR`` with
connect and read timeouts, into a temporary file that is checked before it is renamed into place.

Settings:
* ``LOOKALIKE_WEIGHTS=imagenet|random`` picks the published files or seeded random weights;
* ``LOOKALIKE_VGG19_WEIGHTS`` / ``LOOKALIKE_EFFICIENTNETB0_WEIGHTS`` name a file of your own for one
  model (its structure is checked, its hash is not);
* ``LOOKALIKE_WEIGHTS=<file>`` (older form) is used for the one model whose structure the file fits.

The SHA-256 of the file a model actually loads goes into every cache key (:attr:`Resolved.label`);
each file is hashed once per process and remembered by path, size and modification time.
Light on purpose: Keras, h5py and requests are imported only when a file is loaded or fetched.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lookalike.core import settings
from lookalike.core.digests import Digests, digests
from lookalike.core.fetch import FetchError, Progress, fetch_checked, terminal_progress
from lookalike.core.h5_layout import LayoutError, Structure, read_structure

MODELS_DIR = settings.MODELS_DIR  # checked first; a module attribute so tests can point it elsewhere
CONNECT_TIMEOUT = 10.0  # seconds to open a connection (at most; never above the read timeout)


@dataclass(frozen=True)
class PublishedFile:
    """One weight file as Keras publishes it, with the structure a model expects from it."""

    key: str  # short id used in settings and cache labels
    model: str  # keras.applications name
    filename: str  # the name Keras caches it under
    base: str  # public base URL; LOOKALIKE_MIRROR replaces it
    relative: str  # path below the base, the same on a mirror
    md5: str  # Keras's published ``file_hash``
    weighted_layers: int  # layers with weights, in Keras's legacy loading order
    parameters: int  # values stored in the file

    @property
    def url(self) -> str:
        return f"{self.base}/{self.relative}"

    @property
    def variable(self) -> str:
        """The per-model setting that points this model at a file of one's own."""
        return settings.OWN_WEIGHTS_VARIABLES[self.key]


# Names, URLs and MD5 hashes as in keras/src/applications/{vgg19,efficientnet}.py (include_top=False).
PUBLISHED: dict[str, PublishedFile] = {
    "vgg19": PublishedFile(
        key="vgg19",
        model="VGG19",
        filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        base="https://storage.googleapis.com/tensorflow",
        relative="keras-applications/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="253f8cb515780f3b799900260a226db6",
        weighted_layers=16,
        parameters=20_024_384,
    ),
    "efficientnetb0": PublishedFile(
        key="efficientnetb0",
        model="EfficientNetB0",
        filename="efficientnetb0_notop.h5",
        base="https://storage.googleapis.com",
        relative="keras-applications/efficientnetb0_notop.h5",
        md5="50bc09e76180e00e4465e1a485ddc09d",
        weighted_layers=131,
        parameters=4_049_571,
    ),
}

# EfficientNet's published Normalization layer holds the ImageNet standard deviations as its variance;
# with weights="imagenet" Keras adds a Rescaling by 1/sqrt(std) after it (tensorflow/tensorflow#49930).
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


class WeightsUnavailable(RuntimeError):
    """A model's weights could not be found, fetched or trusted. The message says which file and what to do."""

    def __init__(self, model: str, filename: str, reason: str, fix: str | None = None):
        self.model, self.filename, self.reason = model, filename, reason
        self.fix = fix if fix is not None else default_fix(model)
        super().__init__(f"{model} weights: {reason} {self.fix}".strip())


def default_fix(model: str) -> str:
    spec = next((p for p in PUBLISHED.values() if p.model == model), None)
    if spec is None:
        return "To try the app without them, set LOOKALIKE_WEIGHTS=random."
    return (
        f"Fix: run `python utils.py weights` where there is internet, or copy `{spec.filename}` into "
        f"{MODELS_DIR}/ or {keras_cache_dir()}/, or set LOOKALIKE_MIRROR to a copy "
        f"(`{spec.relative}` below it); to try the app without them, set LOOKALIKE_WEIGHTS=random."
    )


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` keeps model files: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME", "").strip()
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "models"


def timeouts(current: settings.Settings) -> tuple[float, float]:
    """(connect, read) timeouts in seconds; ``LOOKALIKE_DOWNLOAD_TIMEOUT`` sets the read timeout."""
    read = current.download_timeout
    return min(CONNECT_TIMEOUT, read), read


def uses_random(key: str) -> bool:
    """True when ``key``'s model runs on seeded random weights (no file of its own, mode ``random``)."""
    current = settings.get_settings()
    return current.own_weights_for(key) is None and current.weights == "random"


def readable_digests(path: Path, spec: PublishedFile, source: str) -> Digests:
    """:func:`digests`, with an unreadable file (permissions, gone meanwhile) turned into one message."""
    try:
        return digests(path)
    except OSError as error:
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"{path} cannot be read ({error.strerror or error}).",
            replace_fix(spec, source),
        ) from error


# ---------------------------------------------------------------------------------------------
# Structure checks
# ---------------------------------------------------------------------------------------------


def identify(structure: Structure) -> PublishedFile | None:
    """The published file that has this structure (its layer and value counts), if any."""
    return next(
        (
            spec
            for spec in PUBLISHED.values()
            if len(structure.layers) == spec.weighted_layers and structure.parameters == spec.parameters
        ),
        None,
    )


def replace_fix(spec: PublishedFile, source: str) -> str:
    """What to do about a bad file that came from ``source`` (a setting, or a published-file folder)."""
    if source.startswith("LOOKALIKE_"):
        return f"Fix: point {source} at a complete {spec.model} weights file, or unset it to use the published file."
    return (
        f"Fix: delete it and run `python utils.py weights` to fetch a checked copy; to use weights of "
        f"your own, point {spec.variable} at them instead."
    )


def check_structure(path: Path, spec: PublishedFile, setting: str) -> None:
    """Refuse a file of one's own that is unreadable or whose structure is not ``spec``'s model's."""
    try:
        structure = read_structure(path)
        owner = identify(structure)
    except LayoutError as error:
        raise WeightsUnavailable(
            spec.model, spec.filename, f"{error}.", replace_fix(spec, setting)
        ) from error
    if owner is not spec:
        hint = f" It looks like the {owner.model} file ({owner.filename})." if owner else ""
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"{path} does not fit {spec.model}: it holds {len(structure.layers)} layers with "
            f"{structure.parameters:,} values, {spec.model} needs {spec.weighted_layers} layers with "
            f"{spec.parameters:,}.{hint}",
            replace_fix(spec, setting),
        )


# ---------------------------------------------------------------------------------------------
# Resolving a model's weights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The weights a model will load: a checked file, or None for seeded random weights."""

    key: str
    path: Path | None
    source: str  # "random", "models", "keras cache", "download", or the setting that named the file
    sha256: str | None = None

    @property
    def spec(self) -> PublishedFile:
        return PUBLISHED[self.key]

    @property
    def published(self) -> bool:
        """True for Keras's published file (hash checked), False for a file of one's own or random."""
        return self.source in ("models", "keras cache", "download")

    @property
    def label(self) -> str:
        """For cache keys and captions: ``random``, ``imagenet:<sha256 16>`` or ``file:<sha256 16>``."""
        if self.path is None or self.sha256 is None:
            return "random"
        return f"{'imagenet' if self.published else 'file'}:{self.sha256[:16]}"


_FAILURES: dict[tuple, WeightsUnavailable] = {}
_FAILURES_LOCK = threading.Lock()


def _attempt_key(key: str, current: settings.Settings) -> tuple:
    """What a failed attempt depends on: a change of any of these deserves a fresh try."""
    return (key, current.own_weights_for(key), current.weights, current.mirror, str(keras_cache_dir()))


def remembered_failure(key: str) -> WeightsUnavailable | None:
    """The error of an earlier failed attempt for ``key`` under the same settings, if any."""
    with _FAILURES_LOCK:
        return _FAILURES.get(_attempt_key(key, settings.get_settings()))


def forget_failures() -> None:
    """Let the next request try again (the page's "Try again" button)."""
    with _FAILURES_LOCK:
        _FAILURES.clear()


def resolve(key: str, progress: Progress | None = None, retry: bool = False) -> Resolved:
    """Find, fetch if needed, and check the weights for model ``key`` under the current settings.

    A failure is remembered for the process, so a page rerun does not download again; ``retry=True``
    or :func:`forget_failures` clears it. Raises :class:`WeightsUnavailable`.
    """
    current = settings.get_settings()
    attempt = _attempt_key(key, current)
    with _FAILURES_LOCK:
        if retry:
            _FAILURES.pop(attempt, None)
        elif attempt in _FAILURES:
            raise _FAILURES[attempt]
    try:
        return _resolve(PUBLISHED[key], current, progress)
    except WeightsUnavailable as error:
        with _FAILURES_LOCK:
            _FAILURES[attempt] = error
        raise


def label(key: str) -> str:
    """``resolve(key).label``: the weights part of every cache key that depends on ``key``'s model."""
    return resolve(key).label


def _resolve(spec: PublishedFile, current: settings.Settings, progress: Progress | None) -> Resolved:
    own = current.own_weights_for(spec.key)
    if own is not None:
        return _own_file(spec, own, spec.variable)
    if current.weights == "random":
        return Resolved(spec.key, None, "random")
    if current.weights != "imagenet":
        owner = _owner_of_old_setting(spec, Path(current.weights).expanduser())
        if owner is spec:
            return _own_file(spec, Path(current.weights).expanduser(), "LOOKALIKE_WEIGHTS")
        # The file is the other model's; this one takes the published file.
    return _published_file(spec, current, progress)


def _owner_of_old_setting(spec: PublishedFile, path: Path) -> PublishedFile:
    """The model that ``LOOKALIKE_WEIGHTS=<file>`` (the older, single setting) is unambiguously for."""
    variables = " or ".join(other.variable for other in PUBLISHED.values())
    if not path.is_file():
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"LOOKALIKE_WEIGHTS points at {path}, which does not exist.",
            f"Fix: set LOOKALIKE_WEIGHTS to imagenet or random, and name a file of your own with {variables}.",
        )
    try:
        owner = identify(read_structure(path))
    except LayoutError:
        owner = None
    if owner is None:
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"LOOKALIKE_WEIGHTS={path} fits none of the app's models, so it is unclear which one it is for.",
            f"Fix: name it with {variables} instead, and set LOOKALIKE_WEIGHTS to imagenet or random.",
        )
    return owner


def _own_file(spec: PublishedFile, path: Path, setting: str) -> Resolved:
    if not path.is_file():
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"{setting} points at {path}, which does not exist.",
            f"Fix: point {setting} at a {spec.model} weights file, or unset it to use the published file.",
        )
    if path.suffix.lower() not in (".h5", ".hdf5") or path.name.endswith(".weights.h5"):
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"{path} is not a legacy .h5 weights file (the layout keras.applications publishes).",
            f"Fix: point {setting} at such a file, named *.h5.",
        )
    check_structure(path, spec, setting)
    return Resolved(spec.key, path, setting, readable_digests(path, spec, setting).sha256)


def _published_file(spec: PublishedFile, current: settings.Settings, progress: Progress | None) -> Resolved:
    found = find_published(spec)
    if found is not None:
        path, source = found
        return Resolved(spec.key, path, source, verify_published(path, spec).sha256)
    path = fetch(spec, current, progress=progress)
    return Resolved(spec.key, path, "download", readable_digests(path, spec, "models").sha256)


def find_published(spec: PublishedFile) -> tuple[Path, str] | None:
    """Where the published file lies, without checking or fetching it: (path, "models" | "keras cache")."""
    for folder, source in ((MODELS_DIR, "models"), (keras_cache_dir(), "keras cache")):
        if (folder / spec.filename).is_file():
            return folder / spec.filename, source
    return None


def verify_published(path: Path, spec: PublishedFile) -> Digests:
    """Refuse ``path`` unless its MD5 is Keras's published one for ``spec``."""
    found = readable_digests(path, spec, "models")
    if found.md5 != spec.md5:
        try:
            other = identify(read_structure(path))
            what = (
                f" It looks like the {other.model} file ({other.filename})."
                if other and other is not spec
                else ""
            )
        except LayoutError:
            what = " It is not a readable HDF5 file (truncated or damaged)."
        raise WeightsUnavailable(
            spec.model,
            spec.filename,
            f"{path} is not Keras's published {spec.filename}: its MD5 is {found.md5}, expected {spec.md5} "
            f"({path.stat().st_size:,} bytes).{what}",
            replace_fix(spec, "models"),
        )
    return found


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------


def source_url(spec: PublishedFile, mirror: str | None) -> str:
    """The public URL, or the same relative path below ``LOOKALIKE_MIRROR`` (a URL or a folder)."""
    return f"{mirror.rstrip('/')}/{spec.relative}" if mirror else spec.url


def fetch(
    spec: PublishedFile,
    current: settings.Settings,
    destination: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download ``spec`` into ``destination`` (default: the Keras cache), checked against Keras's hash.

    A failed or interrupted download leaves nothing behind (see :func:`fetch.fetch_checked`).
    """
    target = (destination or keras_cache_dir()) / spec.filename
    if target.is_file():
        verify_published(target, spec)
        return target
    source = source_url(spec, current.mirror)
    try:
        return fetch_checked(source, target, spec.md5, timeouts(current), progress)
    except FetchError as error:
        raise WeightsUnavailable(
            spec.model, spec.filename, f"could not download it from {source}: {error}."
        ) from error


def prefetch(destination: Path | None = None, report: Callable[[str], None] = print) -> bool:
    """Fetch and check every published file the app uses; True when all are in place.

    With ``destination`` the files are fetched into that folder (to carry to an offline machine);
    otherwise to where the app looks. ``python utils.py weights`` and ``make weights`` run this.
    """
    current = settings.get_settings()
    ok = True
    for spec in PUBLISHED.values():
        try:
            if destination is None:
                resolved = _published_file(spec, current, terminal_progress(spec.filename))
                path, source = resolved.path, resolved.source
            else:
                path, source = fetch(spec, current, destination, terminal_progress(spec.filename)), "fetched"
        except WeightsUnavailable as error:
            report(f"error: {error}")
            ok = False
            continue
        report(f"{spec.model}: {path} ({source}; MD5 {spec.md5} as Keras publishes it)")
    return ok


def status(key: str) -> tuple[bool, str]:
    """(ready, in words) for ``key``'s weights, for the home page. Never downloads."""
    spec, current = PUBLISHED[key], settings.get_settings()
    if uses_random(key):
        return False, "random weights (LOOKALIKE_WEIGHTS=random)"
    old_form_mine = False
    if current.own_weights_for(key) is None and current.weights not in ("imagenet", "random"):
        try:
            old_form_mine = _owner_of_old_setting(spec, Path(current.weights).expanduser()) is spec
        except WeightsUnavailable as error:
            return False, str(error)
    if current.own_weights_for(key) is None and not old_form_mine and find_published(spec) is None:
        failure = remembered_failure(key)
        return False, str(
            failure
        ) if failure else f"`{spec.filename}` not downloaded yet: fetched on first use"
    try:
        resolved = resolve(key)
    except WeightsUnavailable as error:
        return False, str(error)
    return True, f"{resolved.path} ({resolved.source}; SHA-256 {resolved.sha256[:12]}…)"
