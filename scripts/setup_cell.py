"""Write the Colab set-up cell at the top of every chapter of the book.

The first cell of each chapter (tagged ``colab-setup``) installs the ``fcn_tutorial`` package when it
is not importable, which is the case on Google Colab, from the repository and branch named in
``_config.yml`` (``repository.url``, ``repository.branch``). Where the package is installed (this
repository, after ``make install``) the cell does nothing and prints nothing.

Usage::

    python scripts/setup_cell.py            # rewrite the cell in every chapter listed in _toc.yml
    python scripts/setup_cell.py --check    # exit 1 and name the chapters whose cell is out of date

This script does not import ``fcn_tutorial``: it runs before the package is installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]
TAG = "colab-setup"
TAGS = [TAG, "hide-cell"]  # hide-cell: the site folds the cell away; Colab shows it

TEMPLATE = '''\
# Set-up: where this book's package is missing (on Google Colab), install it from
# {url} (branch {branch}). Where it is installed, this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("fcn_tutorial") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "fcn-tutorial @ git+{url}@{branch}"], check=True)
    import torch

    print("fcn_tutorial installed;", "GPU: " + torch.cuda.get_device_name(0) if torch.cuda.is_available()
          else "no GPU: choose Runtime > Change runtime type > GPU for the full profile")'''


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open(encoding="utf-8") as file:
        content = yaml.safe_load(file)
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return content


def setup_cell_source(config_path: Path = REPO / "_config.yml") -> str:
    """The set-up cell's code for the repository and branch in ``config_path``."""
    repository = read_yaml(config_path).get("repository") or {}
    url, branch = repository.get("url"), repository.get("branch")
    if not url or not branch:
        raise ValueError(f"{config_path}: repository.url and repository.branch must both be set")
    return TEMPLATE.format(url=str(url).rstrip("/"), branch=branch)


def chapter_paths(toc_path: Path = REPO / "_toc.yml") -> list[Path]:
    """Every notebook listed in the table of contents (root first), in order."""
    toc = read_yaml(toc_path)
    files = [toc["root"]] if "root" in toc else []

    def walk(entries: list) -> None:
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))
            for part in entry.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return [toc_path.parent / (name if name.endswith(".ipynb") else f"{name}.ipynb") for name in files]


def is_setup_cell(cell) -> bool:
    return cell.cell_type == "code" and TAG in cell.get("metadata", {}).get("tags", [])


def up_to_date(cell, source: str) -> bool:
    return is_setup_cell(cell) and cell.source == source and all(tag in cell.metadata["tags"] for tag in TAGS)


def apply(notebook_path: Path, source: str) -> bool:
    """Put the set-up cell first in ``notebook_path``; return True when the file changed."""
    notebook = nbformat.read(notebook_path, as_version=4)
    cells = notebook.cells
    if cells and is_setup_cell(cells[0]):
        if up_to_date(cells[0], source):
            return False
        cells[0].metadata["tags"] = TAGS + [tag for tag in cells[0].metadata["tags"] if tag not in TAGS]
        if cells[0].source != source:
            cells[0].source = source
            cells[0].outputs = []
            cells[0].execution_count = None
    else:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = list(TAGS)
        cells.insert(0, cell)
    nbformat.write(notebook, notebook_path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell is out of date")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to update (default: every chapter in _toc.yml)")
    args = parser.parse_args(argv)
    source = setup_cell_source()
    notebooks = args.notebooks or [path for path in chapter_paths() if path.exists()]
    stale = []
    for path in notebooks:
        if not path.exists():
            raise FileNotFoundError(f"{path}: notebook not found")
        notebook = nbformat.read(path, as_version=4)
        first = notebook.cells[0] if notebook.cells else None
        if args.check:
            if first is None or not up_to_date(first, source):
                stale.append(path)
        elif apply(path, source):
            print(f"updated the set-up cell of {path.relative_to(REPO) if path.is_absolute() else path}")
    if stale:
        names = ", ".join(str(path.relative_to(REPO)) for path in stale)
        print(f"the set-up cell is missing or out of date in: {names}; run python scripts/setup_cell.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
