"""Progress reporting: the ``(done, total)`` callback every long job takes, and a terminal bar for it."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]


def progress_printer(label: str) -> Progress:
    """A progress callback ``(done, total)`` that draws a tqdm bar on the terminal."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:  # start from what was already done (cached), so the rate counts new work only
            bar["bar"] = tqdm(total=total, initial=done, desc=label, unit="img")
        bar["bar"].total = total
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update

