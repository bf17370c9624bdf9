"""Build the chapters' notebooks from their percent-format sources.

Each source ``book/_src/0X_name.py`` is a plain Python file cut into cells by ``# %%`` lines
(the "percent" format that Jupytext, VS Code and Spyder understand):

* ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines start with ``# ``;
* ``tags=["solution", "hide-cell"]`` after the marker sets the cell's tags.

The script writes ``book/0X_name.ipynb`` without outputs, with the Colab set-up cell of
``scripts/setup_cell.py`` first. ``--execute`` then runs it in place, as ``make notebooks`` does
(no widget state stored), and prints how long it took; run it with the data and the profile set::

    FCN_TUTORIAL_DATA=../shared/data FCN_TUTORIAL_PROFILE=quick python book/_src/build.py --execute 03

Usage: ``python book/_src/build.py [--execute] [01 02 ... 06]`` (default: every chapter).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import time
from pathlib import Path

import nbformat

SOURCES = Path(__file__).resolve().parent
BOOK = SOURCES.parent
SETUP_CELL = BOOK.parent / "scripts" / "setup_cell.py"
CHAPTERS = {
    "01": "01_introduction",
    "02": "02_classification_to_segmentation",
    "03": "03_data",
    "04": "04_fcn_architectures",
    "05": "05_measuring_segmentation",
    "06": "06_training",
}
MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def _finish(kind: str, lines: list[str], tags: list[str]):
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if kind == "markdown":
        text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines)
        cell = nbformat.v4.new_markdown_cell(text)
    else:
        cell = nbformat.v4.new_code_cell("\n".join(lines))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def parse_percent(path: Path) -> list:
    """Split a percent-format file into notebook cells."""
    cells, kind, tags, lines = [], None, [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = MARKER.match(line)
        if match is None and line.startswith("# %%"):
            raise ValueError(f"{path}:{number}: cannot read the cell marker {line!r}")
        if match:
            if kind is not None:
                cells.append(_finish(kind, lines, tags))
            kind = "markdown" if match["markdown"] else "code"
            tags = ast.literal_eval(match["tags"]) if match["tags"] else []
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append(_finish(kind, lines, tags))
    return cells


def build(key: str) -> Path:
    name = CHAPTERS[key]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = parse_percent(SOURCES / f"{name}.py")
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    target = BOOK / f"{name}.ipynb"
    nbformat.validate(notebook)
    nbformat.write(notebook, target)
    setup_cell = _load_setup_cell_script()
    setup_cell.apply(target, setup_cell.setup_cell_source())
    return target


def _load_setup_cell_script():
    """``scripts/setup_cell.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("setup_cell", SETUP_CELL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def execute(path: Path, timeout: int = 600) -> float:
    """Run every cell of the notebook at ``path`` in place (working folder: the notebook's); return seconds."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook in place after building it")
    parser.add_argument("chapters", nargs="*", help="chapter numbers (default: every chapter)")
    args = parser.parse_args(argv)
    unknown = [key for key in args.chapters if key not in CHAPTERS]
    if unknown:
        parser.error(f"unknown chapter {unknown[0]!r}; choose among {', '.join(CHAPTERS)}")
    for key in args.chapters or CHAPTERS:
        path = build(key)
        print("wrote", path.relative_to(BOOK.parent))
        if args.execute:
            print(f"executed {path.relative_to(BOOK.parent)} in {execute(path):.0f} s")


if __name__ == "__main__":
    main()
