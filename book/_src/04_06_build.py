"""Build the notebooks of chapters 4-6 from their percent-format sources.

Each source ``book/_src/0X_name.py`` is a plain Python file cut into cells by ``# %%`` lines, the
"percent" format that Jupytext, VS Code and Spyder understand (the same format as chapters 1-3):

* ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines start with ``# ``;
* ``tags=["solution", "hide-cell"]`` after the marker sets the cell's tags.

The script writes ``book/0X_name.ipynb`` without outputs, with the set-up cell of
``scripts/setup_cell.py`` first. Afterwards, execute the chapter in place so that the committed
notebook carries real outputs::

    FCN_TUTORIAL_DATA=/path/to/shared/data FCN_TUTORIAL_PROFILE=quick \\
        .venv/bin/jupyter execute --inplace book/0X_name.ipynb

Usage: ``python book/_src/04_06_build.py [04 05 06]`` (default: all three chapters).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat

SOURCES = Path(__file__).resolve().parent
BOOK = SOURCES.parent
SETUP_CELL = BOOK.parent / "scripts" / "setup_cell.py"
CHAPTERS = {
    "04": "04_fcn_architectures",
    "05": "05_measuring_segmentation",
    "06": "06_training",
}
MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def make_cell(kind: str, lines: list[str], tags: list[str]) -> nbformat.NotebookNode:
    """One notebook cell from the lines between two markers (blank lines at either end dropped)."""
    text = "\n".join(lines).strip("\n")
    if kind == "markdown":
        text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.split("\n"))
        cell = nbformat.v4.new_markdown_cell(text)
    else:
        cell = nbformat.v4.new_code_cell(text)
    if tags:
        cell.metadata["tags"] = tags
    return cell


def parse_percent(path: Path) -> list[nbformat.NotebookNode]:
    """Split a percent-format file into notebook cells; the text before the first marker is skipped."""
    cells, kind, tags, lines = [], None, [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = MARKER.match(line)
        if match is None and line.startswith("# %%"):
            raise ValueError(f"{path}:{number}: cannot read the cell marker {line!r}")
        if match:
            if kind is not None:
                cells.append(make_cell(kind, lines, tags))
            kind = "markdown" if match["markdown"] else "code"
            tags = ast.literal_eval(match["tags"]) if match["tags"] else []
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append(make_cell(kind, lines, tags))
    return cells


def build(key: str) -> Path:
    """Write ``book/<chapter>.ipynb`` from ``book/_src/<chapter>.py``; returns the notebook's path."""
    if key not in CHAPTERS:
        raise ValueError(f"unknown chapter {key!r}: expected one of {', '.join(CHAPTERS)}")
    name = CHAPTERS[key]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = parse_percent(SOURCES / f"{name}.py")
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    target = BOOK / f"{name}.ipynb"
    nbformat.validate(notebook)
    nbformat.write(notebook, target)
    subprocess.run([sys.executable, str(SETUP_CELL), str(target)], check=True)  # the Colab set-up cell
    return target


if __name__ == "__main__":
    for key in sys.argv[1:] or CHAPTERS:
        print("wrote", build(key))
