"""Write student copies of the chapters: the same notebooks without the exercises' solutions.

In the book, each exercise is three cells: the student's stub (tagged ``exercise``), the solution
(tagged ``solution``, hidden on the site) and the checker call (tagged ``check``). The student copy
drops every ``solution`` cell and clears the outputs of the ``check`` cells (they were produced by the
solution), so a student fills in the stub and runs the checker themselves.

Usage::

    python scripts/make_student.py                      # every chapter in _toc.yml -> student/
    python scripts/make_student.py --out elsewhere book/03_data.ipynb
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from setup_cell import REPO, chapter_paths  # noqa: E402

SOLUTION, CHECK = "solution", "check"


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def student_copy(notebook):
    """A copy of ``notebook`` without solution cells and with the checkers' outputs cleared."""
    copy = nbformat.from_dict(notebook)
    copy.cells = [cell for cell in copy.cells if SOLUTION not in tags(cell)]
    for cell in copy.cells:
        if cell.cell_type == "code" and CHECK in tags(cell):
            cell.outputs = []
            cell.execution_count = None
    return copy


def make_student(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student copy of each notebook into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: notebook not found")
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # nbformat raises several kinds for a broken file
            raise ValueError(f"{path}: not a readable notebook ({error})") from error
        solutions = sum(SOLUTION in tags(cell) for cell in notebook.cells)
        target = out / path.name
        nbformat.write(student_copy(notebook), target)
        written.append(target)
        print(f"{target}: {solutions} solution cell(s) removed")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "student", help="output folder (default: student/)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: every chapter in _toc.yml)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or [path for path in chapter_paths() if path.exists()]
    if not notebooks:
        print("no chapters found (are the notebooks in book/?)", file=sys.stderr)
        return 1
    make_student(notebooks, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
