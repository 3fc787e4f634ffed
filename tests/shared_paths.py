"""Where the project and the shared, read-only test data live (importable from any test module)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PAINTINGS = SHARED_DATA / "images-by-style"
CLOTHING = SHARED_DATA / "clothing-dataset-small"
