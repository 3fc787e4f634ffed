"""An opt-in readout of this process's model loads and inference calls.

Set ``LOOKALIKE_DIAGNOSTICS=1`` and the app shows one small line in the sidebar, for example
``pid 4242 · model loads: vgg19=1 · inference calls: vgg19=37``. Operators use it to check that models
are shared by every session of a server process, and the browser tests read it to prove it.
"""

from __future__ import annotations

import os

import streamlit as st

from lookalike.core.counters import INFERENCE_CALLS, LOAD_COUNTS

ENV = "LOOKALIKE_DIAGNOSTICS"


def enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}={count}" for name, count in sorted(counts.items())) or "none"


def summary() -> str:
    """One line: this process's id, how often each model was loaded, and how many batches each ran."""
    return (
        f"pid {os.getpid()} · model loads: {_counts(LOAD_COUNTS)} · "
        f"inference calls: {_counts(INFERENCE_CALLS)}"
    )


def render_diagnostics() -> None:
    """Show :func:`summary` at the bottom of the sidebar when ``LOOKALIKE_DIAGNOSTICS`` is set; else nothing.

    Call it after the page has run (after ``st.navigation(...).run()``), so that the counts include this run.
    """
    if not enabled():
        return
    st.sidebar.caption(f"🩺 {summary()}")
