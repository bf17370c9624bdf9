"""The training history: one row per epoch, kept in ``history.csv`` and drawn in ``curves.png``.

A history is a list of dictionaries with the same keys in every row::

    epoch, lr, train_loss, val_loss, val_accuracy, val_jaccard_0, ..., val_jaccard_mean, val_size, seconds

``val_size`` says at what size the validation masks were scored: 0 at full size (each mask as drawn),
else the shorter side in pixels of masks resized to the training size (faster, but not the full-size
figure that ``val.json`` and ``fcn-tutorial evaluate`` report).

:func:`write_history` rewrites the whole file atomically (it is small), so the CSV always matches
the last checkpoint; :func:`read_history` turns it back into numbers; :func:`plot_history` draws
losses and validation Jaccard against the epoch.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from .files import atomic_write_text

__all__ = ["history_columns", "write_history", "read_history", "plot_history"]

INTEGER_COLUMNS = ("epoch", "val_size")


def history_columns(n_classes: int) -> list[str]:
    """The CSV columns for ``n_classes`` classes, in order."""
    per_class = [f"val_jaccard_{c}" for c in range(n_classes)]
    return [
        "epoch",
        "lr",
        "train_loss",
        "val_loss",
        "val_accuracy",
        *per_class,
        "val_jaccard_mean",
        "val_size",
        "seconds",
    ]


def write_history(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write ``history`` to ``path`` as CSV, atomically (the old file stays until the new one is complete)."""
    path = Path(path)
    columns = list(history[0]) if history else ["epoch"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: _format(value) for key, value in row.items()})
    return atomic_write_text(path, buffer.getvalue())


def _format(value) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest exact round trip
    return str(value)


def read_history(path: str | os.PathLike) -> list[dict]:
    """Read a ``history.csv``: ``epoch`` and ``val_size`` as ``int``, every other column as ``float``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"history {path} does not exist")
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    history = []
    for line, row in enumerate(rows, start=2):
        try:
            history.append({k: int(v) if k in INTEGER_COLUMNS else float(v) for k, v in row.items()})
        except (TypeError, ValueError):
            raise ValueError(f"history {path}, line {line}: expected numbers, got {row}") from None
    return history


def plot_history(history: Sequence[dict], path: str | os.PathLike | None = None, *, title: str | None = None):
    """Draw the losses (left) and validation Jaccard (right) per epoch; save to ``path`` if given.

    Uses matplotlib's object-oriented :class:`~matplotlib.figure.Figure` (no pyplot state), so it
    works in scripts without a display and the returned figure shows inline in Jupyter.
    """
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    scored = [row for row in history if not math.isnan(row["val_accuracy"])]  # --val-every skips some epochs
    scored_epochs = [row["epoch"] for row in scored]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_jacc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [row["train_loss"] for row in history], label="train loss")
    ax_loss.plot(scored_epochs, [row["val_loss"] for row in scored], label="validation loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    jaccard_columns = [k for k in (history[0] if history else {}) if k.startswith("val_jaccard_")]
    for column in jaccard_columns:
        name = "mean" if column.endswith("mean") else f"class {column.rsplit('_', 1)[1]}"
        style = "-" if name == "mean" else "--"
        ax_jacc.plot(scored_epochs, [row[column] for row in scored], style, label=f"Jaccard {name}")
    if history:
        best = max(history, key=lambda row: _or_minus_inf(row["val_jaccard_mean"]))
        ax_jacc.axvline(best["epoch"], color="grey", lw=0.8, ls=":", label=f"best (epoch {best['epoch']})")
    ax_jacc.set_xlabel("epoch")
    sizes = {row.get("val_size", 0) for row in history}
    ax_jacc.set_ylabel("validation Jaccard" + (f" (at {sizes.pop()} px)" if len(sizes) == 1 and 0 not in sizes else ""))
    ax_jacc.set_ylim(0, 1)
    ax_jacc.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def _or_minus_inf(value: float) -> float:
    return -math.inf if value is None or math.isnan(value) else value
