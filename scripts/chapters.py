"""The chapters as notebooks: one jupytext source, three builds (site, students, instructors).

Each chapter's source is ``book/_src/<chapter>.py`` in jupytext's percent format; the chapters, in
order, are the entries of ``_toc.yml`` that have such a source. Exercises use nbgrader's format:

* an answer cell has ``nbgrader={"grade_id": ..., "solution": true}``; in code, the solution sits
  between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; a markdown answer cell is the model answer;
* a test cell has ``nbgrader={"grade_id": ..., "grade": true, "points": N}``: it calls the visible
  checker of ``fcn_tutorial.exercises``, then the hidden tests between ``### BEGIN HIDDEN TESTS`` and
  ``### END HIDDEN TESTS``. It grades the answer cells between the previous test cell and itself.

:func:`source_notebook` reads a source as the instructors' notebook (everything in it);
:func:`student_notebook` removes what students must not see, as ``nbgrader generate_assignment``
does: solutions become ``# YOUR CODE HERE`` stubs, model answers ``YOUR ANSWER HERE``, hidden tests
vanish. The book's notebooks (``book/*.ipynb``, what the site renders) are the student notebooks.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
SOURCES = BOOK / "_src"
TOC = REPO / "_toc.yml"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
ANSWER_STUB = "YOUR ANSWER HERE"
RAISES = "raises-exception"  # lets nbclient, nbval and the site run past a test cell that fails


# --- the chapter list ------------------------------------------------------------------------------


def toc_files(toc_path: Path = TOC) -> list[str]:
    """Every file named in the table of contents (root first), in order, without suffix."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{toc_path}: expected a jb-book table of contents with a root entry")
    files = [toc["root"]]

    def walk(entries: list) -> None:
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [str(Path(name).with_suffix("")) if Path(name).suffix in {".ipynb", ".md"} else name for name in files]


def chapters(toc_path: Path = TOC) -> list[str]:
    """The chapters' names (``03_data``...) in the order of ``_toc.yml``: its entries with a source in book/_src."""
    names = [Path(entry).name for entry in toc_files(toc_path) if entry.startswith("book/")]
    return [name for name in names if (SOURCES / f"{name}.py").is_file()]


def resolve(key: str, toc_path: Path = TOC) -> str:
    """A chapter's name from its name or its number (``"05"`` or ``"5"`` -> ``05_measuring_segmentation``)."""
    names = chapters(toc_path)
    matches = [name for name in names if name == key or (key.isdigit() and name.split("_")[0] == key.zfill(2))]
    if len(matches) != 1:
        raise ValueError(f"unknown chapter {key!r}; the chapters in _toc.yml are {', '.join(names)}")
    return matches[0]


# --- the Colab set-up cell: the one place that asks scripts/setup_cell.py for its text --------------


def setup_cell_text() -> str:
    """The text of every chapter's first cell (tagged ``colab-setup``), from ``scripts/setup_cell.py``."""
    spec = importlib.util.spec_from_file_location("setup_cell", Path(__file__).resolve().parent / "setup_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.setup_cell_source()


# --- reading a source ------------------------------------------------------------------------------


def _nbgrader_metadata(given: dict, where: str) -> dict:
    """nbgrader's full cell metadata (schema 3) from the short form written in a source."""
    if "grade_id" not in given:
        raise ValueError(f"{where}: an nbgrader cell needs a grade_id")
    grade, solution = bool(given.get("grade", False)), bool(given.get("solution", False))
    if grade and "points" not in given:
        raise ValueError(f"{where}: graded cell {given['grade_id']!r} needs points")
    metadata = {
        "grade": grade,
        "grade_id": given["grade_id"],
        "locked": bool(given.get("locked", grade and not solution)),
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        metadata["points"] = given["points"]
    return metadata


def source_notebook(name: str) -> nbformat.NotebookNode:
    """The instructors' notebook of a chapter: its source read by jupytext, with the Colab set-up cell."""
    path = SOURCES / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: chapter source not found")
    notebook = jupytext.read(path, fmt="py:percent")
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    setup = setup_cell_text()
    ids = set()
    for index, cell in enumerate(notebook.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        where = f"{path.relative_to(REPO)}, cell {index}"
        if "colab-setup" in cell.metadata.get("tags", []):
            cell.source = setup
            cell.metadata["tags"] = ["colab-setup", "hide-cell"]
        if "nbgrader" in cell.metadata:
            cell.metadata["nbgrader"] = _nbgrader_metadata(cell.metadata["nbgrader"], where)
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            if grade_id in ids:
                raise ValueError(f"{where}: grade_id {grade_id!r} is used twice")
            ids.add(grade_id)
            if is_answer(cell) and cell.cell_type == "code" and BEGIN_SOLUTION not in cell.source:
                raise ValueError(f"{where}: answer cell {grade_id!r} has no {BEGIN_SOLUTION} ... {END_SOLUTION}")
    return notebook


# --- the student's version -------------------------------------------------------------------------


def is_answer(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))


def is_test(cell) -> bool:
    grader = cell.metadata.get("nbgrader", {})
    return bool(grader.get("grade")) and not grader.get("solution") and cell.cell_type == "code"


def _replace_regions(source: str, begin: str, end: str, stub: list[str]) -> str:
    """Replace each ``begin`` ... ``end`` region (delimiter lines included) by ``stub``, at its indentation."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + stub_line for stub_line in stub)
        elif line.strip() == end:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out).rstrip()


def student_notebook(notebook) -> nbformat.NotebookNode:
    """A copy of an instructors' notebook without solutions, model answers or hidden tests."""
    student = copy.deepcopy(notebook)
    for cell in student.cells:
        if is_answer(cell) and cell.cell_type == "markdown":
            cell.source = (
                _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, [ANSWER_STUB])
                if BEGIN_SOLUTION in cell.source
                else ANSWER_STUB
            )
        elif is_answer(cell):
            cell.source = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, CODE_STUB)
        if BEGIN_HIDDEN in cell.source:
            cell.source = _replace_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, [])
        if is_test(cell) and RAISES not in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), RAISES]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return student


def solution_texts(notebook) -> list[str]:
    """Every line that only the instructors may see (solutions, model answers, hidden tests), stripped,
    without the short or common ones (``return weight``) that could appear anywhere."""
    hidden = []
    for cell in notebook.cells:
        regions = re.findall(rf"{BEGIN_SOLUTION}\n(.*?){END_SOLUTION}", cell.source, flags=re.S)
        regions += re.findall(rf"{BEGIN_HIDDEN}\n(.*?){END_HIDDEN}", cell.source, flags=re.S)
        if is_answer(cell) and cell.cell_type == "markdown" and BEGIN_SOLUTION not in cell.source:
            regions.append(cell.source)
        hidden += [line.strip() for region in regions for line in region.splitlines()]
    return sorted({line for line in hidden if len(line) >= 30 and not line.startswith("#")})


# --- questions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One autograded question: its test cell's grade_id and points, and the answer cells it grades."""

    grade_id: str
    points: float
    answers: tuple[str, ...]


def questions(notebook) -> list[Question]:
    """The autograded questions of a notebook, in order."""
    found, answers = [], []
    for cell in notebook.cells:
        if is_answer(cell) and cell.cell_type == "code":
            answers.append(cell.metadata["nbgrader"]["grade_id"])
        elif is_test(cell):
            grader = cell.metadata["nbgrader"]
            found.append(Question(grader["grade_id"], float(grader["points"]), tuple(answers)))
            answers = []
    return found


def open_questions(notebook) -> list[tuple[str, float]]:
    """The (grade_id, points) of the questions graded by hand (markdown answer cells)."""
    return [
        (cell.metadata["nbgrader"]["grade_id"], float(cell.metadata["nbgrader"].get("points", 0)))
        for cell in notebook.cells
        if is_answer(cell) and cell.cell_type == "markdown"
    ]
