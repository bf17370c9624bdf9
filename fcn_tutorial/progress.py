"""Progress bars: one switch for every long loop in the package.

``progress=None`` shows bars only on a terminal (tqdm's own rule), ``True`` always, ``False`` never.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

__all__ = ["bars_disabled", "progress_bar"]

T = TypeVar("T")


def bars_disabled(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` switch (``None``: hide bars when not on a terminal).

    >>> bars_disabled(None), bars_disabled(True), bars_disabled(False)
    (None, False, True)
    """
    return None if progress is None else not progress


def progress_bar(iterable: Iterable[T] | None = None, *, progress: bool | None = None, **options) -> tqdm:
    """``tqdm(iterable, **options)`` switched by ``progress``."""
    return tqdm(iterable, disable=bars_disabled(progress), **options)
