"""``python utils.py weights`` (``make weights``) and weights faults in real command-line processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import image_search
import utils
from lookalike.core.weights import PUBLISHED
from tests.paths import ROOT
from tests.standin_weights import leftovers, truncate, zero_block


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


def test_prefetch_command_fetches_checks_and_says_where(imagenet, monkeypatch, weights_server, capsys, tmp_path):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/cut")
    assert utils.main(["weights"]) == 1
    output = capsys.readouterr()
    assert output.out.count("error:") == 2 and "was cut off" in output.out and "missing or wrong" in output.err
    assert leftovers(imagenet.keras_cache) == []  # nothing half-written
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    assert utils.main(["weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for spec in PUBLISHED.values():
        assert any(line.startswith(f"{spec.model}: {imagenet.keras_cache / spec.filename}") for line in lines)
        assert (imagenet.keras_cache / spec.filename).read_bytes() == imagenet.standins.path(spec.key).read_bytes()
    assert utils.main(["weights", "--to", str(tmp_path / "carry")]) == 0  # a folder to copy to another machine
    assert sorted(p.name for p in (tmp_path / "carry").iterdir()) == sorted(s.filename for s in PUBLISHED.values())
    # The same mirror serves the sample paintings, with the same relative-path scheme.
    assert image_search.main(["download", "images-by-style", "--to", str(tmp_path / "paintings")]) == 0
    assert len(list((tmp_path / "paintings").glob("*.jpg"))) == 32


def test_prefetch_command_against_a_server_that_never_answers(stalled_server, tmp_path):
    started = time.monotonic()
    done = run_cli("utils.py", "weights", "--to", str(tmp_path / "carry"),
                   env={"LOOKALIKE_MIRROR": stalled_server, "LOOKALIKE_DOWNLOAD_TIMEOUT": "1"})
    assert time.monotonic() - started < 60
    assert done.returncode == 1 and done.stdout.count("read timeout") == 2 and "Traceback" not in done.stderr
    assert leftovers(tmp_path / "carry") == []


@pytest.mark.slow
def test_a_truncated_own_file_is_one_line_in_a_real_process(standins, tmp_path):
    bad = truncate(standins.path("vgg19"), tmp_path / "mine.h5")
    folder = tmp_path / "paintings"
    folder.mkdir()
    done = run_cli("image_search.py", "index", str(folder), "--model", "vgg19",
                   env={"LOOKALIKE_VGG19_WEIGHTS": str(bad)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and "truncated or damaged" in errors[0]
    assert "LOOKALIKE_VGG19_WEIGHTS" in errors[0]


@pytest.mark.parametrize(("fault", "expected"), [
    ("truncated", "truncated or damaged"),
    ("zeroed block", "is not Keras's published"),
    ("wrong model", "looks like the EfficientNetB0 file"),
    ("cut download", "was cut off"),
    ("404", "HTTP 404"),
])
def test_each_fault_is_one_line_in_the_command_line(fault, expected, imagenet, monkeypatch, weights_server,
                                                    copy_paintings, capsys):
    target = imagenet.models / PUBLISHED["vgg19"].filename
    if fault == "truncated":
        truncate(imagenet.standins.path("vgg19"), target)
    elif fault == "zeroed block":
        zero_block(imagenet.standins.path("vgg19"), target)
    elif fault == "wrong model":
        imagenet.place("vgg19", imagenet.models, source=imagenet.standins.path("efficientnetb0"))
    else:
        monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/{'cut' if fault == 'cut download' else 'missing'}")
    folder = copy_paintings(slice(0, 1), name="cli-fault")
    assert image_search.main(["index", str(folder), "--model", "vgg19"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: VGG19 weights:") and expected in err
    assert "Fix:" in err and leftovers(imagenet.keras_cache) == []


def test_auto_style_model_falls_back_and_says_which_file_and_fix(imagenet, copy_paintings, capsys):
    bad = truncate(imagenet.standins.path("vgg19"), imagenet.models / PUBLISHED["vgg19"].filename)
    folder = copy_paintings(slice(0, 1), name="cli-auto")
    assert image_search.main(["index", str(folder), "--model", "auto"]) == 0
    err = capsys.readouterr().err
    assert "EfficientNet-Lite0" in err and str(bad) in err and "Fix:" in err and "Traceback" not in err
