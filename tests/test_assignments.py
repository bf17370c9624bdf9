"""Assignments: the nbgrader format of the exercises, the student and instructor builds, and the grader.

The grader tests run real kernels: three submissions of chapter 5 (all correct, one answer wrong,
blank), then the bad inputs on a two-question notebook that runs in a second.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (the scripts are not part of the package)."""
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


chapters = load_script("chapters")
assignments = load_script("assignments")
grade = load_script("grade")
CHAPTERS = chapters.chapters()


def code(source: str, **grader):
    cell = nbformat.v4.new_code_cell(source)
    if grader:
        cell.metadata["nbgrader"] = chapters._nbgrader_metadata(grader, "test")
    return cell


def markdown(source: str, **grader):
    cell = nbformat.v4.new_markdown_cell(source)
    if grader:
        cell.metadata["nbgrader"] = chapters._nbgrader_metadata(grader, "test")
    return cell


# --- the format ---------------------------------------------------------------------------------------

ANSWER = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
HIDDEN = "assert double(21) == 42, 'double(21) should be 42'"
TEST = f"assert double(1) == 2, 'double(1) should be 2'\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS"


def tiny_master():
    """A two-question instructors' notebook that runs in a second."""
    return nbformat.v4.new_notebook(
        cells=[
            markdown("# Tiny"),
            code("import time"),
            code(ANSWER, grade_id="double", solution=True),
            code(TEST, grade_id="double_test", grade=True, points=2),
            code(
                "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
                grade_id="square",
                solution=True,
            ),
            code(
                "assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert square(-4) == 16\n### END HIDDEN TESTS",
                grade_id="square_test",
                grade=True,
                points=3,
            ),
            markdown("Why?"),
            markdown("Because the model answer says so.", grade_id="why", solution=True, grade=True, points=1),
        ],
        metadata={"kernelspec": dict(chapters.KERNELSPEC)},
    )


def test_student_version_keeps_the_exercise_and_drops_solutions_hidden_tests_and_model_answers():
    master = tiny_master()
    student = chapters.student_notebook(master)
    assert student.cells[2].source == "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert student.cells[3].source == "assert double(1) == 2, 'double(1) should be 2'"
    assert "raises-exception" in student.cells[3].metadata["tags"]
    assert student.cells[7].source == "YOUR ANSWER HERE"
    assert master.cells[2].source == ANSWER  # the instructors' notebook is untouched
    assert [q.grade_id for q in chapters.questions(master)] == ["double_test", "square_test"]
    assert chapters.questions(master)[0].answers == ("double",)
    assert chapters.open_questions(master) == [("why", 1.0)]
    assert HIDDEN in chapters.solution_texts(master)


def test_student_version_matches_nbgrader_generate_assignment():
    preprocessors = pytest.importorskip("nbgrader.preprocessors")
    master = tiny_master()
    theirs = nbformat.from_dict(master)
    for preprocessor in [preprocessors.ClearSolutions(), preprocessors.ClearHiddenTests()]:
        theirs, _ = preprocessor.preprocess(theirs, {})
    ours = chapters.student_notebook(master)
    assert [cell.source.strip() for cell in ours.cells] == [cell.source.strip() for cell in theirs.cells]


def test_a_source_with_a_broken_nbgrader_cell_names_the_file(tmp_path, monkeypatch):
    source = tmp_path / "_src" / "09_extra.py"
    source.parent.mkdir()
    source.write_text('# %% nbgrader={"grade_id": "f", "solution": true}\ndef f():\n    return 1\n')
    monkeypatch.setattr(chapters, "SOURCES", source.parent)
    monkeypatch.setattr(chapters, "REPO", tmp_path)
    with pytest.raises(ValueError, match=r"_src/09_extra.py, cell 0: answer cell 'f' has no ### BEGIN SOLUTION"):
        chapters.source_notebook("09_extra")
    source.write_text('# %% nbgrader={"grade_id": "t", "grade": true}\nassert True\n')
    with pytest.raises(ValueError, match="graded cell 't' needs points"):
        chapters.source_notebook("09_extra")


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_exercise_is_graded_or_keyed(name):
    notebook = chapters.source_notebook(name)
    questions = chapters.questions(notebook)
    graded = {answer for question in questions for answer in question.answers}
    tests = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in notebook.cells if chapters.is_test(cell)}
    for cell in notebook.cells:
        if chapters.is_answer(cell) and cell.cell_type == "code":
            assert cell.metadata["nbgrader"]["grade_id"] in graded, f"{name}: answer cell without a test cell"
    for question in questions:
        assert question.points > 0 and question.answers, f"{name}: {question.grade_id} grades nothing"
        assert re.search(r"check_\w+\(", tests[question.grade_id]), f"{name}: {question.grade_id} has no visible check"
        assert chapters.BEGIN_HIDDEN in tests[question.grade_id], f"{name}: {question.grade_id} has no hidden tests"
    for grade_id, points in chapters.open_questions(notebook):
        assert points > 0, f"{name}: open question {grade_id} has no points"
    assert questions or chapters.open_questions(notebook), f"{name}: no exercise at all"


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_book_notebooks_hold_no_solution(name):
    hidden = chapters.solution_texts(chapters.source_notebook(name))
    text = (REPO / "book" / f"{name}.ipynb").read_text(encoding="utf-8")
    assert hidden, f"{name}: no solution text found in the source"
    leaked = [line for line in hidden if line in text or line.replace('"', '\\"') in text]
    assert not leaked, f"book/{name}.ipynb shows solution text: {leaked[:3]}"


def test_the_instructors_page_states_each_chapters_points():
    page = (REPO / "book" / "for_instructors.md").read_text(encoding="utf-8")
    rows = {int(match[1]): match for match in re.finditer(r"^\| (\d) [^|]+\|([^|]+)\|([^|]+)\|$", page, re.M)}
    assert sorted(rows) == [int(name[:2]) for name in CHAPTERS]
    for name in CHAPTERS:
        notebook = chapters.source_notebook(name)
        auto = sum(int(points) for points in re.findall(r"\((\d+)\)", rows[int(name[:2])][2]))
        manual = sum(int(points) for points in re.findall(r"\((\d+)\)", rows[int(name[:2])][3]))
        assert auto == sum(question.points for question in chapters.questions(notebook)), name
        assert manual == sum(points for _, points in chapters.open_questions(notebook)), name


def test_assignments_build_student_and_instructor_copies(tmp_path):
    assert assignments.main(["--out", str(tmp_path), "05", "02"]) == 0
    student = nbformat.read(tmp_path / "student" / "05_measuring_segmentation.ipynb", as_version=4)
    master = nbformat.read(
        tmp_path / "instructor" / "source" / "05_measuring_segmentation" / "05_measuring_segmentation.ipynb",
        as_version=4,
    )
    assert [q.grade_id for q in chapters.questions(master)] == ["confusion_matrix_test", "pixel_accuracy_test"]
    assert any(chapters.BEGIN_SOLUTION in cell.source for cell in master.cells)
    assert not any(
        chapters.BEGIN_SOLUTION in cell.source or chapters.BEGIN_HIDDEN in cell.source for cell in student.cells
    )
    exercise_cells = [
        cell
        for cell in student.cells
        if cell.cell_type == "code" and (chapters.is_test(cell) or chapters.is_answer(cell))
    ]
    assert len(exercise_cells) == 4 and not any(cell.outputs for cell in exercise_cells)
    key = (tmp_path / "instructor" / "answer_key.md").read_text()
    assert "## 05_measuring_segmentation" in key and "torch.bincount(index, minlength=n_classes**2)" in key
    assert "Autograded: 5 points; graded by hand: 3 points." in key
    assert (tmp_path / "instructor" / "autograder" / "grade.py").is_file()


def test_assignments_refuse_a_notebook_out_of_sync_with_its_source(tmp_path, monkeypatch):
    book = tmp_path / "book"
    book.mkdir()
    notebook = nbformat.read(REPO / "book" / "05_measuring_segmentation.ipynb", as_version=4)
    notebook.cells[3].source += "\n# edited by hand"
    nbformat.write(notebook, book / "05_measuring_segmentation.ipynb")
    monkeypatch.setattr(chapters, "BOOK", book)
    with pytest.raises(ValueError, match="disagrees with book/_src/05_measuring_segmentation.py"):
        assignments.student_copy("05_measuring_segmentation")


# --- grading ------------------------------------------------------------------------------------------


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as file:
        return {row["student"]: row for row in csv.DictReader(file)}


def answered(master, answers: dict[str, str] | None = None):
    """A submission: the student notebook with the instructors' answers, or the given ones."""
    submission = chapters.student_notebook(master)
    for cell, original in zip(submission.cells, master.cells):
        if chapters.is_answer(cell) and cell.cell_type == "code":
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            cell.source = (answers or {}).get(grade_id, original.source)
    return submission


@pytest.mark.slow
def test_grading_three_submissions_of_chapter_5(tmp_path):
    master = chapters.source_notebook("05_measuring_segmentation")
    folder = tmp_path / "submitted"
    folder.mkdir()
    wrong = (
        "def pixel_accuracy(prediction, target, ignore_index=255):\n"
        "    return (prediction == target).double().mean().item()"
    )
    nbformat.write(answered(master), folder / "alice.ipynb")
    nbformat.write(answered(master, {"pixel_accuracy": wrong}), folder / "bob.ipynb")
    nbformat.write(chapters.student_notebook(master), folder / "carol.ipynb")
    out = tmp_path / "grades.csv"
    assert grade.main(["05", str(folder), "--out", str(out), "--timeout", "240"]) == 0
    rows = read_csv(out)
    assert list(rows) == ["alice", "bob", "carol"]
    scores = {
        student: (row["confusion_matrix_test"], row["pixel_accuracy_test"], row["total"])
        for student, row in rows.items()
    }
    assert scores == {"alice": ("3", "2", "5"), "bob": ("3", "0", "3"), "carol": ("0", "0", "0")}
    assert rows["alice"]["problems"] == ""
    assert "pixel_accuracy_test: ExerciseFailed: Not yet:" in rows["bob"]["problems"]
    assert "Void pixels" in rows["bob"]["problems"]  # the visible checker's hint
    assert "not implemented yet" in rows["carol"]["problems"]
    assert grade.main(["05", str(folder), "--out", str(out)]) == 2  # never overwrites without --overwrite


def test_grading_bad_submissions_never_loses_the_others(tmp_path, monkeypatch):
    master = tiny_master()
    folder = tmp_path / "submitted"
    (folder / "frank" / "tiny").mkdir(parents=True)
    nbformat.write(answered(master), folder / "alice.ipynb")
    (folder / "bob.ipynb").write_text("{ this is not a notebook")
    (folder / "carl.pdf").write_bytes(b"%PDF-1.4")
    deleted = answered(master)
    del deleted.cells[4]  # the answer cell of square
    nbformat.write(deleted, folder / "dora.ipynb")
    reordered = answered(master)
    reordered.cells[2], reordered.cells[4] = reordered.cells[4], reordered.cells[2]
    nbformat.write(reordered, folder / "eve.ipynb")
    pasted_twice = chapters.student_notebook(master)  # square's stub, then a pasted copy (same id) answered
    copy = nbformat.from_dict(json.loads(json.dumps(pasted_twice.cells[4])))
    copy.source, copy.id = "def square(x):\n    return x * x", "pasted"
    pasted_twice.cells.insert(5, copy)
    nbformat.write(pasted_twice, folder / "paul.ipynb")
    nbformat.write(
        answered(master, {"square": "def square(x):\n    while True:\n        pass"}),
        folder / "frank" / "tiny" / "tiny.ipynb",
    )  # loops forever in its test
    nbformat.write(answered(master, {"double": "def double(x) return 2 * x"}), folder / "gina.ipynb")
    broken_test = answered(master)
    broken_test.cells[3].source = "pass  # the student emptied the test"
    nbformat.write(broken_test, folder / "hugo.ipynb")
    (folder / "ivan").mkdir()
    (folder / "ivan.ipynb").write_text("{}")  # a second submission named ivan

    monkeypatch.setattr(grade.chapters, "resolve", lambda key: "tiny")
    monkeypatch.setattr(grade.chapters, "source_notebook", lambda name: master)
    out = tmp_path / "grades.csv"
    assert grade.main(["tiny", str(folder), "--out", str(out), "--timeout", "20", "--cell-timeout", "5"]) == 0
    rows = read_csv(out)
    totals = {student: row["total"] for student, row in rows.items()}
    assert totals == {
        "alice": "5",
        "bob": "0",
        "carl": "0",
        "dora": "2",
        "eve": "5",  # answer cells are placed back by their id, wherever the student moved them
        "frank": "2",
        "gina": "3",
        "hugo": "5",
        "ivan": "0",
        "paul": "3",  # double left as the stub
    }
    problems = {student: row["problems"] for student, row in rows.items()}
    assert "bob.ipynb is not a readable notebook" in problems["bob"]
    assert "carl.pdf is not a readable notebook" in problems["carl"]
    assert "square_test: answer cell square was deleted" in problems["dora"]
    assert problems["eve"] == ""
    assert "answer cell square appears 2 times; the last edited one was graded" in problems["paul"]
    assert "square_test: not run, the time limit was reached" in problems["frank"]
    assert "double_test: double raised SyntaxError" in problems["gina"]
    assert problems["hugo"] == ""  # the tests are the instructor's, whatever the student did to them
    with out.open(newline="") as file:
        ivans = [row["problems"] for row in csv.DictReader(file) if row["student"] == "ivan"]
    assert len(ivans) == 2 and all("2 submissions are named ivan" in problem for problem in ivans)
    assert "no single notebook tiny.ipynb found in ivan/" in ivans[0] and "not a readable notebook" in ivans[1]


def test_the_answer_key_is_graded_first_and_its_training_runs_are_shared(tmp_path, monkeypatch, capsys):
    training = (
        "import os, pathlib\n"
        "runs = pathlib.Path(os.environ['FCN_TUTORIAL_RUNS'])\n"
        "if not (runs / 'finished').exists():  # as chapter 6 skips a finished run\n"
        "    runs.mkdir(parents=True, exist_ok=True)\n"
        "    (runs / 'trainings').open('a').write('trained\\n')\n"
        "    (runs / 'finished').touch()"
    )
    master = tiny_master()
    master.cells.insert(1, code(training))
    folder = tmp_path / "submitted"
    folder.mkdir()
    for student in ("alice", "bob"):
        nbformat.write(answered(master), folder / f"{student}.ipynb")
    monkeypatch.setattr(grade.chapters, "resolve", lambda key: "tiny")
    monkeypatch.setattr(grade.chapters, "source_notebook", lambda name: master)
    monkeypatch.delenv("FCN_TUTORIAL_RUNS", raising=False)
    assert grade.main(["tiny", str(folder), "--out", str(tmp_path / "grades.csv"), "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "answer key: 5 / 5" in out and out.index("answer key: 5 / 5") < out.index("alice: 5 / 5")
    assert (tmp_path / "grades-runs" / "trainings").read_text() == "trained\n"  # once, by the answer key
    assert "FCN_TUTORIAL_RUNS" not in os.environ  # only the kernels saw it


def test_the_autograder_copy_asks_for_the_notebook_when_given_a_chapter_number(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grade.chapters, "TOC", tmp_path / "_toc.yml")  # as in _build/assignments/instructor/
    (tmp_path / "submitted").mkdir()
    assert grade.main(["05", str(tmp_path / "submitted"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "give the instructors' notebook of the chapter" in capsys.readouterr().err
