"""Loads that failed, remembered for the life of the process.

A page's script runs again on every click. Without this, a model whose pretrained weights can't be found would
try to download them again on each run (one more "Downloading data from …" every time). The failure is kept
here instead, shown at once on later runs, and tried again only when someone clicks "Try again".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from lookalike.core import weights

T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def _failures() -> tuple[dict[str, Exception], threading.Lock]:
    """The failed loads of this process by key, shared by every session, with their lock."""
    return {}, threading.Lock()


def remembered_failure(key: str) -> Exception | None:
    """The error of the last failed load under ``key``, if it has not been retried since.

    A weights failure is remembered only while the weights module still remembers it under the current settings:
    a change of settings, or its own retry, makes the next run load again.
    """
    failures, lock = _failures()
    with lock:
        failed = failures.get(key)
    if isinstance(failed, weights.WeightsUnavailable) and weights.remembered_failure("vgg19") is None:
        forget_failure(key)
        return None
    return failed


def forget_failure(key: str) -> None:
    failures, lock = _failures()
    with lock:
        failures.pop(key, None)


def forget_all_failures() -> None:
    """Forget every remembered failure: the weights "Try again" button retries every model that failed."""
    failures, lock = _failures()
    with lock:
        failures.clear()


def remembered_load(key: str, load: Callable[[], T], errors: type[Exception] | tuple[type[Exception], ...]) -> T:
    """``load()``, unless it already failed under ``key`` in this process: then the same error again, at once.

    Only ``errors`` are remembered (a missing file, a refused download); anything else is a bug and is raised.
    """
    failed = remembered_failure(key)
    if failed is not None:
        raise failed
    try:
        return load()
    except errors as error:
        failures, lock = _failures()
        with lock:
            failures[key] = error
        raise


def try_again_button(key: str) -> None:
    """A "Try again" button: forgets the failure under ``key``, so the next run loads again."""
    st.button("Try again", key=f"try_again_{key}", on_click=forget_failure, args=(key,), icon=":material/refresh:",
              help="Look for the weights again (after adding the file, or with a network connection)")
