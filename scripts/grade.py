"""Grade a folder of submitted notebooks: a CSV with one row per student, one column per question, the total.

Each submission is graded as nbgrader's ``autograde`` would, without Docker, a database or the network:

1. its answer cells (nbgrader ``solution`` cells) are put into the instructors' notebook of the chapter,
   whose other cells, visible and hidden tests included, replace whatever the student did to them;
2. the notebook runs top to bottom in a fresh kernel and a fresh working folder, with a time limit;
3. a test cell that runs without an error earns its points.

Answer cells are found by their nbgrader id wherever the student moved them; cells a student added are
not run (helpers belong inside the answer cell). A submission that is not a notebook, has lost an answer
cell, fails, or runs out of time gets zero for the questions concerned and the reason in the ``problems``
column; the other questions and the other students are graded as usual. The CSV is rewritten after every
student, so an interruption keeps the rows already graded. Submitted code runs with your permissions:
grade in a container or an account of its own if you do not trust the submissions.

Before the students, the answer key (the instructors' notebook itself) is graded once, as a check that it
earns every point on this machine. Its training runs (chapter 6) go into a folder beside the CSV
(``<csv name>-runs/``, ``$FCN_TUTORIAL_RUNS``), where every student's notebook finds them finished instead of
training them again.

Usage::

    python scripts/grade.py 05 submissions/ --out grades.csv
    python scripts/grade.py 05 submitted/ --out grades.csv --timeout 300   # nbgrader's submitted/<student>/...
    python autograder/grade.py source/05_measuring_segmentation/05_measuring_segmentation.ipynb submitted/ --out g.csv

``submissions/`` holds ``<student>.ipynb`` files, or one folder per student with the chapter's notebook
somewhere inside (nbgrader's ``submitted/<student>/<assignment>/`` layout).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chapters  # noqa: E402

from fcn_tutorial.files import OutputClaims, atomic_write_text  # noqa: E402


@dataclass
class Grade:
    """One student's points per question (by test grade_id) and the reasons for any zero."""

    student: str
    points: dict[str, float]
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.points.values())


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_of(cell) -> str | None:
    """``"Name: message"`` of the first error a code cell raised, or None."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return _short(f"{output.ename}: {output.evalue}")
    return None


def read_submission(path: Path):
    """The submitted notebook, or a ValueError that says why it cannot be graded."""
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds for a broken or foreign file
        reason = f"{type(error).__name__}: {_short(error, 80)}"
        raise ValueError(f"{path.name} is not a readable notebook ({reason})") from None
    return notebook


def assemble(master, submitted) -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """The notebook to run: the master with the student's answer cells, each where the master has it. Returns it
    and, per question that cannot be graded (an answer cell deleted), the reason; keys ``note <id>`` carry
    remarks that cost nothing (an answer cell pasted twice)."""
    questions = chapters.questions(master)
    run = chapters.student_notebook(master)  # stubs where no usable answer exists
    stubs = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in run.cells if chapters.is_answer(cell)}
    copies: dict[str, list[str]] = {}
    for cell in submitted.cells:  # wherever the student put them: each is placed back by its id
        grader = cell.get("metadata", {}).get("nbgrader", {})
        if grader.get("solution") and cell.cell_type == "code":
            copies.setdefault(grader.get("grade_id"), []).append(cell.source)
    answers, notes = {}, {}
    for grade_id, sources in copies.items():  # a copied cell keeps its id: grade the last one that was edited
        edited = [source for source in sources if source != stubs.get(grade_id)]
        answers[grade_id] = (edited or sources)[-1]
        if len(sources) > 1:
            notes[grade_id] = f"answer cell {grade_id} appears {len(sources)} times; the last edited one was graded"
    blocked = {}
    for question in questions:
        missing = [answer for answer in question.answers if answer not in answers]
        if missing:
            blocked[question.grade_id] = f"{question.grade_id}: answer cell {', '.join(missing)} was deleted"
    blocked_answers = {answer for question in questions if question.grade_id in blocked for answer in question.answers}
    for cell, original in zip(run.cells, master.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if chapters.is_test(cell):
            cell.source = original.source  # the tests as the instructor wrote them, hidden ones included
            cell.metadata["tags"] = [tag for tag in cell.metadata.get("tags", []) if tag != chapters.RAISES]
        elif chapters.is_answer(cell) and cell.cell_type == "code" and grade_id not in blocked_answers:
            cell.source = answers[grade_id]
    return run, {**blocked, **{f"note {grade_id}": note for grade_id, note in notes.items()}}


def run_notebook(
    notebook, workdir: Path, timeout: float, cell_timeout: float, env: dict[str, str] | None = None
) -> tuple[set[int], str | None]:
    """Run the code cells in place, errors kept in the outputs, with ``env`` added to the kernel's environment.
    Returns the indices of the cells that ran to the end, and why the run stopped early (None when every cell
    ran)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,
        store_widget_state=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    deadline, finished = time.monotonic() + timeout, set()
    try:
        # the kernel's own warnings are not the student's
        with client.setup_kernel(stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}):
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return finished, f"the time limit of {timeout:g} s was reached"
                client.timeout = max(1, int(min(cell_timeout, left)))
                client.execute_cell(cell, index)
                finished.add(index)
    except CellTimeoutError:
        return finished, f"the time limit was reached (a cell ran longer than {client.timeout} s)"
    except DeadKernelError as error:
        return finished, f"the kernel died ({_short(error, 80)})"
    return finished, None


def grade(
    master, path: Path, student: str, *, timeout: float = 600, cell_timeout: float = 300, env: dict | None = None
) -> Grade:
    """Grade one submission against the instructors' notebook ``master``; never raises for a bad submission."""
    questions = chapters.questions(master)
    result = Grade(student, {question.grade_id: 0.0 for question in questions})
    try:
        submitted = read_submission(path)
        notebook, blocked = assemble(master, submitted)
    except ValueError as error:
        result.problems.append(str(error))
        return result
    result.problems.extend(blocked.values())
    blocked = {key for key in blocked if not key.startswith("note ")}
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as workdir:
        try:
            finished, stopped = run_notebook(notebook, Path(workdir), timeout, cell_timeout, env)
        except Exception as error:  # a kernel that cannot start, a broken notebook: this student only
            finished, stopped = set(), f"the notebook could not be run ({type(error).__name__}: {_short(error, 80)})"
    answer_errors = {
        cell.metadata["nbgrader"]["grade_id"]: _error_of(cell)
        for cell in notebook.cells
        if chapters.is_answer(cell) and cell.cell_type == "code"
    }
    tests = {
        cell.metadata["nbgrader"]["grade_id"]: (index, cell)
        for index, cell in enumerate(notebook.cells)
        if chapters.is_test(cell)
    }
    for question in questions:
        if question.grade_id in blocked:
            continue
        index, cell = tests[question.grade_id]
        error = _error_of(cell)
        if index not in finished:
            result.problems.append(f"{question.grade_id}: not run, {stopped or 'the notebook stopped before it'}")
        elif error:
            failed_answers = [
                f"{answer} raised {answer_errors[answer]}" for answer in question.answers if answer_errors.get(answer)
            ]
            result.problems.append(f"{question.grade_id}: {'; '.join(failed_answers) or error}")
        else:
            result.points[question.grade_id] = question.points
    return result


def find_submissions(folder: Path, name: str) -> list[tuple[str, Path | list[Path]]]:
    """(student, notebook) for each entry of ``folder``: ``<student>.<suffix>`` or ``<student>/.../*.ipynb``;
    for a folder without exactly one notebook, the list of its notebooks instead (none, or too many)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder of submissions not found")
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            found.append((entry.stem, entry))
            continue
        notebooks = sorted(entry.rglob(f"{name}.ipynb")) or sorted(
            path for path in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in path.parts
        )
        found.append((entry.name, notebooks[0] if len(notebooks) == 1 else notebooks))
    return found


def to_csv(grades: list[Grade], questions: list[chapters.Question]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *(question.grade_id for question in questions), "total", "problems"])
    for result in grades:
        writer.writerow(
            [
                result.student,
                *(f"{result.points[question.grade_id]:g}" for question in questions),
                f"{result.total:g}",
                " | ".join(result.problems),
            ]
        )
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "chapter",
        help="the assignment: a chapter's number or name (05, 05_measuring_segmentation), "
        "or the instructors' notebook (_build/assignments/instructor/source/<chapter>/<chapter>.ipynb)",
    )
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default: 600)")
    parser.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell (default: 300)")
    args = parser.parse_args(argv)
    try:
        if args.chapter.endswith(".ipynb"):  # an instructors' notebook, e.g. from make assignments
            name, master = Path(args.chapter).stem, read_submission(Path(args.chapter))
        elif not chapters.TOC.is_file():  # the autograder/ copy of an instructors' build: no book beside it
            raise ValueError(
                f"give the instructors' notebook of the chapter, e.g. source/<chapter>/<chapter>.ipynb, not "
                f"{args.chapter!r}: chapter numbers work in a clone of the repository"
            )
        else:
            name = chapters.resolve(args.chapter)
            master = chapters.source_notebook(name)
        submissions = find_submissions(args.submissions, name)
        out = OutputClaims(overwrite=args.overwrite).claim(args.out)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    questions = chapters.questions(master)
    if not questions:
        print(f"error: chapter {name} has no autograded question", file=sys.stderr)
        return 2
    data = os.environ.get("FCN_TUTORIAL_DATA")
    print(
        f"data: {data or 'not set (FCN_TUTORIAL_DATA): the chapters use ~/.cache/fcn-tutorial, downloading if needed'}"
    )
    runs = os.environ.get("FCN_TUTORIAL_RUNS") or str(out.with_name(f"{out.stem}-runs").resolve())
    env = {"FCN_TUTORIAL_RUNS": runs}  # the answer key's training runs, found finished by every student
    key = check_answer_key(master, name, runs, env, max(args.timeout, 3600), max(args.cell_timeout, 3600))
    grades = []
    for student, path in submissions:
        if isinstance(path, list):
            found = f": {', '.join(str(p.relative_to(args.submissions)) for p in path)}" if path else ""
            result = Grade(
                student,
                {question.grade_id: 0.0 for question in questions},
                [f"no single notebook {name}.ipynb found in {student}/{found}"],
            )
        else:
            result = grade(master, path, student, timeout=args.timeout, cell_timeout=args.cell_timeout, env=env)
        same_name = [other for other, _ in submissions if other == student]
        if len(same_name) > 1:  # e.g. alice.ipynb beside alice/: one row each, and the instructor should know
            result.problems.append(f"{len(same_name)} submissions are named {student}: each has a row of its own")
        grades.append(result)
        atomic_write_text(out, to_csv(grades, questions))
        problems = f"  ({len(result.problems)} problem(s))" if result.problems else ""
        print(f"{student}: {result.total:g} / {sum(q.points for q in questions):g}{problems}", flush=True)
    if not grades:
        atomic_write_text(out, to_csv(grades, questions))
    print(f"wrote {out} ({len(grades)} student(s))")
    if key.problems:
        print(
            f"warning: the answer key itself lost points on this machine: {' | '.join(key.problems)}", file=sys.stderr
        )
    return 0


def check_answer_key(master, name: str, runs: str, env: dict, timeout: float, cell_timeout: float) -> Grade:
    """Grade the instructors' own notebook once: it must earn every point, and it leaves the chapter's training
    runs finished in ``runs`` for the students' notebooks."""
    started = time.perf_counter()
    print(f"answer key: grading the instructors' {name} first (training runs, if any, into {runs})", flush=True)
    with tempfile.TemporaryDirectory(prefix="answer-key-") as folder:
        path = Path(folder) / f"{name}.ipynb"
        nbformat.write(master, path)
        key = grade(master, path, "answer key", timeout=timeout, cell_timeout=cell_timeout, env=env)
    total = sum(question.points for question in chapters.questions(master))
    print(f"answer key: {key.total:g} / {total:g} in {time.perf_counter() - started:.0f} s", flush=True)
    return key


if __name__ == "__main__":
    sys.exit(main())
