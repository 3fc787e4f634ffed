"""Where the project, its pages and the shared, read-only test data live: the one place tests get paths from."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
STYLE_PAGE = ROOT / "pages" / "style_search.py"
CLASSIFIER_PAGE = ROOT / "pages" / "fashion_classifier.py"
VISUAL_PAGE = ROOT / "pages" / "visual_search.py"
SHARED_DATA = ROOT.parent / "shared" / "data"
PAINTINGS = SHARED_DATA / "images-by-style"  # 32 paintings, 16 cubism + 16 impressionist, read in place
CLOTHING = SHARED_DATA / "clothing-dataset-small"  # train|validation|test/<class>/*.jpg
CLOTHING_FULL = SHARED_DATA / "clothing-dataset-full"  # train 3,068 / validation 341 / the same 80 test photos
SHIPPED_PHOTO_MODEL = ROOT / "models" / "clothing-photos-lite0"
SHIPPED_FASHION_MODEL = ROOT / "models" / "fashion-mnist-lite0-64"
