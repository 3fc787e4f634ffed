"""Style search that explains itself: P@5 by emphasis, emphasis re-rank time, and the Style Search page's rerun
time with "why it matched" shown, on the 174 Met paintings and on a 100,000-vector synthetic collection (faiss).

Run: ``.venv/bin/python bench/style_explain.py`` (``--size 20000`` for a shorter run). Prints figures only.

Baselines, measured in the same run:
* re-rank: today's ranking call (the plain query, ``rank`` through the same index) against the emphasised query
  plus its per-layer breakdown;
* page: the page with the breakdown hidden at emphasis 0, and, when git can show it, the page as it was before
  this feature (``--before``).

The page runs in Streamlit's AppTest, in this process, on the style model of ``--model`` (default: the bundled
Lite0, what an offline machine gets). For the 100,000 synthetic vectors the bench writes 100,000 tiny PNG files,
puts their vectors in the embedding cache (so the page indexes them without a model), and hands the page the
faiss HNSW index built for the re-rank figures (the page would otherwise build the same index again).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "LOOKALIKE_CACHE" not in os.environ:  # a private cache, removed at exit (the synthetic one holds 400 MB)
    os.environ["LOOKALIKE_CACHE"] = _CACHE = tempfile.mkdtemp(prefix="bench-style-explain-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

from lookalike.core import backends, counters  # noqa: E402
from lookalike.core.cache import EmbeddingCache  # noqa: E402
from lookalike.core.files import file_sha256  # noqa: E402
from lookalike.core.segments import emphasise  # noqa: E402
from lookalike.core.vectors import normalize, retrieval_metrics, top_k  # noqa: E402
from lookalike.core.weights import WeightsUnavailable  # noqa: E402
from lookalike.search import samples  # noqa: E402
from lookalike.search.explain import explained_search  # noqa: E402
from lookalike.search.folders import index_folder  # noqa: E402
from lookalike.search.labels import labels_from_names  # noqa: E402
from lookalike.search.ranking import rank  # noqa: E402
from lookalike.style.choice import load_style_model  # noqa: E402
from lookalike.style.segments import style_segments  # noqa: E402

PAINTINGS = ROOT.parent / "shared" / "data" / "images-by-style"
PAGE = ROOT / "pages" / "style_search.py"
EMPHASES = (-1.0, -0.5, 0.0, 0.5, 1.0)
BEFORE = "5d7b238"  # the Style Search page before "why it matched", the emphasis and browsing


def timings_ms(function: Callable[[], object], repeats: int) -> list[float]:
    function()  # warm-up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def p50_ms(function: Callable[[], object], repeats: int) -> float:
    return statistics.median(timings_ms(function, repeats))


def p50_best(timings: list[float]) -> str:
    """Median and best: on a shared machine the best run shows the cost, the median what a user waits."""
    return f"{statistics.median(timings):.0f} ms (best {min(timings):.0f})"


def model_calls() -> int:
    return sum(counters.INFERENCE_CALLS.values())


# ---------------------------------------------------------------------------------------------
# P@5 by emphasis on the 32 labelled paintings
# ---------------------------------------------------------------------------------------------


def p5_by_emphasis() -> None:
    if not PAINTINGS.is_dir():
        print(f"P@5 by emphasis: {PAINTINGS} not found, skipped")
        return
    print(f"\nP@5 on the 32 labelled paintings by emphasis (leave-one-out; chance {15 / 31:.3f}):")
    print(f"{'model':<28}" + "".join(f"{e:>8.1f}" for e in EMPHASES))
    for name in ("lite0", "vgg19"):
        label = name
        try:
            model = load_style_model(name)
        except WeightsUnavailable:
            os.environ["LOOKALIKE_WEIGHTS"] = "random"  # what the offline machine can run
            model, label = load_style_model(name), f"{name} (random weights)"
            del os.environ["LOOKALIKE_WEIGHTS"]
        collection = index_folder(PAINTINGS, model)
        labels = labels_from_names(collection.paths)
        segments = style_segments(model.config)
        row = [retrieval_metrics(collection.vectors, labels, emphasise(collection.vectors, segments, e))["P@5"]
               for e in EMPHASES]
        print(f"{label:<28}" + "".join(f"{p:>8.3f}" for p in row))


# ---------------------------------------------------------------------------------------------
# Re-rank time
# ---------------------------------------------------------------------------------------------


def rerank_times(collection, index, segments, query: np.ndarray, k: int, repeats: int) -> None:
    baseline = p50_ms(lambda: rank(collection, query, k, index), repeats)
    figures = [f"baseline (plain query, rank) {baseline:.2f} ms"]
    for emphasis in (0.0, 0.5, 1.0):
        ms = p50_ms(lambda e=emphasis: explained_search(collection, query, segments, k, e, index), repeats)
        figures.append(f"emphasis {emphasis:+.1f} + breakdown {ms:.2f} ms")
    print("  re-rank p50: " + "; ".join(figures))


# ---------------------------------------------------------------------------------------------
# Page rerun time (AppTest)
# ---------------------------------------------------------------------------------------------


def open_page(path: Path, folder: Path | None, museum: bool = False):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(path), default_timeout=3600)
    if museum:
        app.session_state["collection_choice"] = "Met paintings sample (174)"
    else:
        app.session_state["collection_choice"] = "Another folder…"
        app.session_state["custom_folder"] = str(folder)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def search(app, query: Path, k: int):
    app.file_uploader(key="style_query").set_value((query.name, query.read_bytes(), "image/jpeg"))
    if app.slider:
        app.slider[0].set_value(k)
    next(b for b in app.button if b.label == "Search for Similar Images").click().run()
    assert not app.exception, [e.value for e in app.exception]
    app.run()


def page_times(folder: Path | None, query: Path, k: int, repeats: int, museum: bool, before: str | None) -> None:
    timed = lambda app: p50_best(timings_ms(app.run, repeats))  # noqa: E731
    figures = []
    if before:
        old = before_page(before)
        if old is not None:
            app = open_page(old, folder, museum)
            search(app, query, k)
            figures.append(f"page before this feature {timed(app)}")
    app = open_page(PAGE, folder, museum)
    search(app, query, k)
    calls = model_calls()
    hidden, shown = [], []
    for _ in range(repeats):  # alternated, so that a busy moment of the machine weighs on both alike
        for explain, timings in ((False, hidden), (True, shown)):
            app.toggle(key="style_explain").set_value(explain).run()
            timings.extend(timings_ms(app.run, 1)[-1:])
    figures.append(f"breakdown hidden {p50_best(hidden)}")
    figures.append(f"breakdown shown {p50_best(shown)}")
    slider = app.select_slider(key="style_emphasis")
    moves = []
    for emphasis in (1.0, -1.0, 0.5, 0.0) * max(1, repeats // 4):
        slider.set_value(emphasis)
        started = time.perf_counter()
        app.run()
        moves.append((time.perf_counter() - started) * 1000)
    cards = sum(1 for m in app.markdown if "why-it-matched" in m.value)
    figures.append(f"emphasis moved (re-rank + {cards} breakdowns) {p50_best(moves)}")
    print(f"  page rerun, median (AppTest, k={k}): " + "; ".join(figures)
          + f"; model calls during the reruns: {model_calls() - calls}")


def before_page(ref: str) -> Path | None:
    try:
        source = subprocess.run(["git", "show", f"{ref}:pages/style_search.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print(f"  (the page before this feature, {ref}, is not in this checkout: no such baseline)")
        return None
    folder = tempfile.mkdtemp(prefix="page-before-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / "style_search_before.py"
    path.write_text(source, encoding="utf-8")
    return path


def map_figure_times(collection) -> None:
    """The style map's figure with a thumbnail per painting, rings and a star: built as plain data (what the
    page does) against the same figure validated by plotly (how it was built before)."""
    import plotly.graph_objects as go

    from lookalike.core.images import make_thumbnail
    from lookalike.ui.maps import map_figure

    thumb = make_thumbnail(np.zeros((96, 96, 3), np.uint8), 64)
    uri = "data:image/jpeg;base64," + "A" * (thumb.size // 3)  # a data URI of a typical thumbnail's length
    coords = np.random.default_rng(0).normal(size=(len(collection), 2))
    figure = lambda: map_figure(  # noqa: E731
        coords, [p.stem for p in collection.paths], thumbnails=[uri] * len(coords), queries=[("your image", (0, 0))],
        highlight=[(i, f"#{i + 1}") for i in range(24)], point_ids=list(range(len(coords))))
    spec = figure().to_dict()
    plain, validated = p50_ms(figure, 20), p50_ms(lambda: go.Figure(spec), 20)
    print(f"  style map figure, {len(coords)} thumbnails: {plain:.1f} ms as plain data, {validated:.1f} ms validated")


# ---------------------------------------------------------------------------------------------
# The 174 Met paintings
# ---------------------------------------------------------------------------------------------


def met_paintings(model, args) -> None:
    folder = samples.museum_folder()
    collection = index_folder(folder, model)
    print(f"\n{len(collection)} Met paintings ({model.config.backbone}, index {collection.stats.seconds:.1f} s):")
    index = backends.positional_index(collection.vectors)
    rerank_times(collection, index, style_segments(model.config), collection.vectors[0], args.k, 200)
    map_figure_times(collection)
    query = sorted(folder.glob("*.jpg"))[0]
    page_times(None, query, args.k, args.page_repeats, museum=True, before=args.before)


# ---------------------------------------------------------------------------------------------
# 100,000 synthetic vectors through faiss
# ---------------------------------------------------------------------------------------------


def synthetic_vectors(n: int, dims: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Vectors shaped as stored style vectors (each layer's part unit length, the whole normalised), in
    clusters per layer, as styles are; clusters differ from layer to layer, so an emphasis re-ranks."""
    rng = np.random.default_rng(seed)
    parts = []
    for dim in dims:
        centres = rng.normal(size=(200, dim))
        parts.append(normalize(centres[rng.integers(0, 200, n)] + 0.6 * rng.normal(size=(n, dim))))
    return normalize(np.concatenate(parts, axis=1))


def tiny_pngs(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct 8x8 PNG files; returns their content hashes (the cache keys)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    keys = []
    for i in range(n):
        path = folder / f"{i // 1000:03d}" / f"synthetic-{i:06d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        keys.append((path, file_sha256(path)))
    return keys


def synthetic_collection(model, args) -> None:
    segments = style_segments(model.config)
    dims = tuple(s.stop - s.start for s in segments)
    print(f"\n{args.size:,} synthetic style vectors ({sum(dims)} floats, {len(dims)} layers) through faiss:")
    vectors = synthetic_vectors(args.size, dims)
    started = time.perf_counter()
    index = backends.make_index("faiss", vectors.shape[1], expected_size=len(vectors))
    index.add(np.arange(len(vectors)), vectors)
    print(f"  faiss {index.options['kind']} built in {time.perf_counter() - started:.0f} s")
    queries = vectors[np.random.default_rng(1).choice(len(vectors), 50, replace=False)]
    for emphasis in EMPHASES:
        recall = []
        for query in queries:
            weighted = emphasise(query, segments, emphasis)
            exact = set(top_k(vectors, weighted, 10, normalized=True)[0].tolist())
            recall.append(len(exact & set(index.search(weighted, 10)[0].tolist())) / 10)
        print(f"  emphasis {emphasis:+.1f}: faiss recall@10 against brute force {np.mean(recall):.3f}")

    folder = Path(tempfile.mkdtemp(prefix="bench-synthetic-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # 100,000 files
    started = time.perf_counter()
    files = tiny_pngs(folder, args.size)
    order = sorted(range(len(files)), key=lambda i: str(files[i][0]))  # index_folder lists files sorted by path
    cache = EmbeddingCache(model.model_id)
    for start in range(0, len(files), 10_000):
        chunk = order[start:start + 10_000]
        cache.store([files[i][1] for i in chunk], vectors[chunk])
    print(f"  {len(files):,} tiny PNG files written and their vectors cached in {time.perf_counter() - started:.0f} s")
    collection = index_folder(folder, model)
    assert collection.stats.new == 0, "the synthetic vectors should all come from the cache"
    rows = np.array([collection.rows[files[i][0]] for i in range(len(files))])  # synthetic order -> row
    rerank_index = RowIds(index, rows)
    rerank_times(collection, rerank_index, segments, collection.vectors[rows[0]], args.k, 200)

    original = backends.positional_index
    backends.positional_index = lambda v: rerank_index if len(v) == len(collection) else original(v)
    try:
        page_times(folder, next(samples.museum_folder().glob("*.jpg")), args.k, args.page_repeats, museum=False,
                   before=None)
    finally:
        backends.positional_index = original


class RowIds:
    """A built index whose ids are the synthetic order, answering with collection rows (what ``rank`` expects)."""

    def __init__(self, index, rows: np.ndarray):
        self.index, self.rows = index, rows

    def search(self, queries, k: int):
        ids, scores = self.index.search(queries, k)
        return self.rows[ids], scores

    def __len__(self) -> int:
        return len(self.index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lite0", choices=["lite0", "vgg19", "auto"],
                        help="the page's style model (LOOKALIKE_STYLE_MODEL); default lite0")
    parser.add_argument("--size", type=int, default=100_000, help="synthetic collection size (default 100,000)")
    parser.add_argument("-k", type=int, default=24, help="results shown (the page's largest k, default 24)")
    parser.add_argument("--page-repeats", type=int, default=12)
    parser.add_argument("--before", default=BEFORE, help="git ref of the page before this feature (baseline)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["p5", "met", "synthetic"])
    args = parser.parse_args()
    os.environ["LOOKALIKE_STYLE_MODEL"] = args.model
    print(f"cores: {os.cpu_count()}; LOOKALIKE_WEIGHTS={os.environ.get('LOOKALIKE_WEIGHTS', 'imagenet')}")
    if "p5" not in args.skip:
        p5_by_emphasis()
    model = load_style_model(args.model)
    print(f"\nthe page's style model: {model.model_id[:80]}…")
    if "met" not in args.skip:
        met_paintings(model, args)
    if "synthetic" not in args.skip:
        synthetic_collection(model, args)


if __name__ == "__main__":
    main()
