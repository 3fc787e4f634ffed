"""Security: upload names are never paths, nothing user-supplied is unpickled, indexing stays inside its roots."""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import image_search
import utils
from lookalike.classifier.storage import list_models
from lookalike.vae.checkpoints import model_dir
from tests.apptest import (
    labelled,
    query_image,
    reference_shown,
    style_app,
    upload_and_search,
    visual_app,
    visual_search,
)
from tests.embedders import GridEmbedder
from tests.paths import CLASSIFIER_PAGE, ROOT

# ---------------------------------------------------------------------------------------------
# Watching file access
# ---------------------------------------------------------------------------------------------


class FileAccess:
    """Records every path the interpreter opens or lists while active (``sys.addaudithook`` cannot be removed)."""

    _instance: FileAccess | None = None

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.active = False

    @classmethod
    def get(cls) -> FileAccess:
        if cls._instance is None:
            cls._instance = cls()
            sys.addaudithook(cls._instance._hook)
        return cls._instance

    def _hook(self, event: str, args: tuple) -> None:
        if self.active and event in ("open", "os.listdir", "os.scandir") and args:
            path = args[0]
            if isinstance(path, (str, bytes, os.PathLike)):
                self.paths.append(os.fsdecode(path))

    def __enter__(self) -> FileAccess:
        self.paths.clear()
        self.active = True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False

    def touched(self, fragment: str) -> list[str]:
        return [p for p in self.paths if fragment in p]


@pytest.fixture(scope="session")
def few_paintings(copy_paintings) -> Path:
    return copy_paintings([7, 8, 25], "three-paintings")


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Upload names are never paths
# ---------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../etc/passwd.png",
    "../../../../tmp/lookalike-upload-probe.png",
    "/etc/shadow.png",
    "..\\..\\windows\\win.ini.png",
    "nul:.png",
    "a/b/c/../../../evil.png",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_upload_name_is_never_used_as_a_path(name: str, few_paintings: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative name would land here if it were ever written
    at = style_app(few_paintings)
    before = set(tmp_path.rglob("*"))
    with FileAccess.get() as access:
        upload_and_search(at, name, png_bytes((200, 30, 30)), "image/png")
    assert not at.exception, [e.value for e in at.exception]
    assert reference_shown(at) and len(at.error) == 0
    assert set(tmp_path.rglob("*")) == before, "the upload created files"
    assert not Path("/tmp/lookalike-upload-probe.png").exists()
    stem = Path(name.replace("\\", "/")).name
    assert access.touched(stem) == [], access.touched(stem)
    for secret in ("passwd", "shadow", "win.ini"):
        assert access.touched(secret) == [], access.touched(secret)


def test_upload_named_after_an_existing_file_uses_the_uploaded_bytes(few_paintings: Path):
    """A name that is the absolute path of a real image must not make the app read that image."""
    target = sorted(few_paintings.glob("*.jpg"))[0]
    at = style_app(few_paintings)
    with FileAccess.get() as access:
        upload_and_search(at, str(target), png_bytes((10, 220, 40), (80, 40)), "image/png")
    assert not at.exception and reference_shown(at)
    query = query_image(at)
    assert query.shape[:2] == (40, 80)  # the uploaded picture, not the painting of that name
    np.testing.assert_array_equal(query[20, 40], [10, 220, 40])
    # The painting may be read for its result thumbnail, but never through the upload.
    assert all(p == str(target) for p in access.touched(target.name)), access.touched(target.name)


# ---------------------------------------------------------------------------------------------
# No pickle, no unsafe model loading
# ---------------------------------------------------------------------------------------------

FORBIDDEN = {
    r"allow_pickle\s*=\s*True": "np.load with pickles",
    r"\bpickle\.loads?\(": "pickle.load",
    r"\bcloudpickle\b|\bdill\b|\bshelve\b|\bmarshal\.loads?\(": "pickle-like loaders",
    r"\bjoblib\.load\(": "joblib.load (pickle)",
    r"\btorch\.load\((?![^)]*weights_only=True)": "torch.load without weights_only=True (pickle)",
    r"safe_mode\s*=\s*False": "keras unsafe deserialisation",
    r"enable_unsafe_deserialization": "keras unsafe deserialisation",
    r"\byaml\.load\(": "yaml.load (use safe_load)",
    r"(?<![.\w])(?:eval|exec)\(": "eval/exec",
}


def project_sources() -> list[Path]:
    """The project's Python files: hidden folders (.venv, .git, local scratch) and the tests are not the product."""
    skip = {"tests", "node_modules", "__pycache__", "test-artifacts"}
    parts = (p.relative_to(ROOT).parts for p in ROOT.rglob("*.py"))
    return sorted(ROOT.joinpath(*part) for part in parts if not skip & set(part) and not part[0].startswith("."))


def test_no_pickle_or_unsafe_loading_in_the_source():
    sources = project_sources()
    assert {"utils.py", "image_search.py", "app.py"} <= {p.name for p in sources}
    found = []
    for path in sources:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, why in FORBIDDEN.items():
                if re.search(pattern, code):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {why}: {line.strip()}")
    assert found == []


def test_every_np_load_refuses_pickles():
    """``np.load`` allows pickles only when asked, but every call says ``allow_pickle=False`` explicitly."""
    calls = []
    for path in project_sources():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\bnp\.load\(", text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            call = text[match.start() : end + 1]
            calls.append(call)
            assert "allow_pickle=False" in call, f"{path.name}: {call}"
    assert calls, "expected the embedding cache to use np.load"


class _Trap:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    marker: Path

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickled_object_array(marker: Path) -> np.ndarray:
    trap = _Trap()
    trap.marker = marker
    array = np.empty(2, dtype=object)
    array[0], array[1] = trap, "padding"
    return array


def test_cache_shard_with_pickled_objects_is_rejected(tmp_path: Path):
    marker = tmp_path / "unpickled"
    cache = image_search.EmbeddingCache("test-security", root=tmp_path / "cache")
    cache.folder.mkdir(parents=True)
    shard = cache.folder / "shard-00000000000000000001-1.npz"
    np.savez(shard, keys=_pickled_object_array(marker), vectors=np.ones((2, 4), np.float32),
             model_id=np.asarray("test-security"))
    assert cache.lookup(["padding"]) == {}
    assert cache.rejected_shards == [shard] and not shard.exists()
    assert not marker.exists(), "a pickle in the cache was loaded"


def test_map_cache_with_pickled_objects_is_recomputed(tmp_path: Path):
    marker = tmp_path / "unpickled"
    vectors = np.random.default_rng(1).standard_normal((8, 6)).astype(np.float32)
    coords = image_search.cached_map(vectors, "test-security", root=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    np.savez(path, coords=_pickled_object_array(marker))
    again = image_search.cached_map(vectors, "test-security", root=tmp_path)
    np.testing.assert_allclose(again, coords, atol=1e-5)
    assert not marker.exists(), "a pickle in the map cache was loaded"


# ---------------------------------------------------------------------------------------------
# LOOKALIKE_ROOTS and symlinks
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path, paintings: list[Path], monkeypatch) -> tuple[Path, Path]:
    """An allowed root with two paintings, and an outside folder with one; LOOKALIKE_ROOTS set to the first."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(paintings[0], allowed / "sub" / "a.jpg")
    shutil.copy(paintings[20], allowed / "sub" / "b.jpg")
    shutil.copy(paintings[30], outside / "secret.jpg")
    monkeypatch.setenv("LOOKALIKE_ROOTS", os.pathsep.join([str(allowed), str(tmp_path / "also-allowed")]))
    return allowed, outside


def test_check_folder_stays_inside_roots(roots: tuple[Path, Path]):
    allowed, outside = roots
    assert utils.check_folder(allowed) == allowed.resolve()
    assert utils.check_folder(allowed / "sub") == (allowed / "sub").resolve()
    for escape in (outside, allowed / ".." / "outside", Path("/"), Path.home()):
        with pytest.raises(utils.FolderError, match="outside the folders this app may index"):
            utils.check_folder(escape)
    (allowed / "link-out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(utils.FolderError, match="outside"):
        utils.check_folder(allowed / "link-out")
    assert not utils.inside_roots(allowed / "link-out")
    # Without LOOKALIKE_ROOTS any existing folder may be indexed.
    assert utils.check_folder(outside, utils.Settings("random", None, (), allowed)) == outside.resolve()


def test_index_folder_refuses_a_symlinked_file_that_escapes(roots: tuple[Path, Path], tmp_path: Path):
    allowed, outside = roots
    (allowed / "sub" / "innocent.jpg").symlink_to(outside / "secret.jpg")
    (allowed / "sub" / "passwd.png").symlink_to("/etc/passwd")
    (allowed / "sub" / "inner-link.jpg").symlink_to(allowed / "sub" / "a.jpg")  # stays inside: allowed
    cache = image_search.EmbeddingCache("test-grid-v1", root=tmp_path / "cache")
    with FileAccess.get() as access:
        collection = image_search.index_folder(allowed, GridEmbedder(), cache=cache)
    assert sorted(p.name for p in collection.paths) == ["a.jpg", "b.jpg", "inner-link.jpg"]
    opened = [p for p in access.paths if "secret" in p or "passwd" in p]
    assert not [p for p in opened if Path(p).resolve() in ((outside / "secret.jpg").resolve(), Path("/etc/passwd"))]


def test_style_search_page_refuses_a_folder_outside_the_roots(roots: tuple[Path, Path]):
    allowed, outside = roots
    at = style_app(outside)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "outside the folders this app may index" in errors[0], errors
    assert not any("images indexed" in c.value for c in at.sidebar.caption)
    at.text_input(key="custom_folder").set_value(str(allowed)).run()
    assert not at.exception and len(at.error) == 0
    assert any(c.value.startswith("2 images indexed") for c in at.sidebar.caption)


# ---------------------------------------------------------------------------------------------
# Upload size limit
# ---------------------------------------------------------------------------------------------


def test_upload_limit_is_set_in_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    limit = config["server"]["maxUploadSize"]
    assert isinstance(limit, int) and 1 <= limit <= 50, limit  # megabytes; Streamlit's default is 200
    assert config["server"].get("maxMessageSize", 200) >= limit


def test_streamlit_reads_the_upload_limit(monkeypatch):
    """The limit is in the file Streamlit reads when started from the project folder."""
    from streamlit import config as st_config

    monkeypatch.chdir(ROOT)
    expected = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))["server"]
    st_config.get_config_options(force_reparse=True)
    try:
        assert st_config.get_option("server.maxUploadSize") == expected["maxUploadSize"]
    finally:
        st_config.get_config_options(force_reparse=True)


@pytest.mark.slow  # opens all three pages, with their models
def test_other_uploaders_never_use_the_name_as_a_path(few_paintings: Path, tmp_path: Path, monkeypatch):
    """The same hostile name through the style-transfer, Visual Search and classifier uploaders."""
    monkeypatch.chdir(tmp_path)
    name = "../../etc/passwd.png"
    data = png_bytes((30, 30, 200), (64, 64))
    apps = []
    transfer = style_app(few_paintings)
    with FileAccess.get() as access:
        labelled(transfer.file_uploader, "Your photo").set_value((name, data, "image/png")).run()
    apps.append(("style transfer", transfer, access.touched("passwd")))
    for dataset in ("fashion-mnist", "furniture"):
        if (model_dir(dataset) / "metadata.json").is_file():
            at = visual_app(dataset)
            with FileAccess.get() as access:
                visual_search(at, dataset, name, data, "image/png")
            apps.append(("visual search", at, access.touched("passwd")))
            break
    if list_models():
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300).run()
        with FileAccess.get() as access:
            labelled(at.file_uploader, "Choose an image").set_value((name, data, "image/png")).run()
        apps.append(("classifier", at, access.touched("passwd")))
    for page, at, touched in apps:
        assert not at.exception and len(at.error) == 0, (page, [e.value for e in at.exception])
        assert touched == [], (page, touched)
    assert list(tmp_path.iterdir()) == [] and not Path("/etc/passwd.png").exists()
