"""Sync the chapters' notebooks with their jupytext sources, and execute them.

``book/_src/<chapter>.py`` (jupytext percent format) is the one source of ``book/<chapter>.ipynb``; the
chapters are those listed in ``_toc.yml``. The notebook is the *student* version of the source (see
``scripts/chapters.py``): no solutions, model answers or hidden tests. Syncing keeps the stored
outputs of every cell whose source did not change, so only changed chapters need executing::

    python book/_src/build.py                # sync every chapter
    python book/_src/build.py --execute 03   # sync chapter 3 and run it in place (as make notebooks does)
    python book/_src/build.py --check        # exit 1 and name the notebooks that disagree with their source
    python book/_src/build.py --list         # the chapters, in the order of _toc.yml

Run it with the data and the profile set, e.g. ``FCN_TUTORIAL_DATA=../shared/data FCN_TUTORIAL_PROFILE=quick``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import chapters  # noqa: E402  (scripts/chapters.py: reading sources, the student version)

BOOK = chapters.BOOK


def expected_notebook(name: str) -> nbformat.NotebookNode:
    """What ``book/<name>.ipynb`` must contain, outputs aside: the student version of the source."""
    return chapters.student_notebook(chapters.source_notebook(name))


def cell_differences(name: str) -> list[str]:
    """How ``book/<name>.ipynb`` differs from its source, cell by cell (sources, kinds and tags; not outputs)."""
    path = BOOK / f"{name}.ipynb"
    if not path.is_file():
        return [f"{path.relative_to(chapters.REPO)} is missing"]
    stored = nbformat.read(path, as_version=4).cells
    wanted = expected_notebook(name).cells
    problems = []
    for index, (have, want) in enumerate(zip(stored, wanted)):
        if have.cell_type != want.cell_type or have.source != want.source:
            first_line = (want.source.splitlines() or [""])[0][:60]
            problems.append(f"cell {index} ({want.cell_type}, {first_line!r}) differs")
        elif sorted(have.metadata.get("tags", [])) != sorted(want.metadata.get("tags", [])):
            problems.append(
                f"cell {index}: tags {have.metadata.get('tags', [])} instead of {want.metadata.get('tags', [])}"
            )
    if len(stored) != len(wanted):
        problems.append(f"{len(stored)} cells instead of {len(wanted)}")
    return problems


def keep_outputs(notebook, stored) -> None:
    """Give each cell of ``notebook`` the id, and each code cell the outputs, of the stored cell with the same
    kind and source, in order; a new or changed cell gets a fresh id and no outputs (it has to run)."""
    position = 0
    for index, cell in enumerate(notebook.cells):
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]  # reproducible
        match = next(
            (
                i
                for i in range(position, len(stored.cells))
                if (stored.cells[i].cell_type, stored.cells[i].source) == (cell.cell_type, cell.source)
            ),
            None,
        )
        if match is None:
            continue
        old = stored.cells[match]
        cell.id = old.get("id", cell.id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = old.outputs, old.execution_count
            if "execution" in old.metadata:
                cell.metadata["execution"] = old.metadata["execution"]
        position = match + 1
    notebook.metadata = {
        **stored.metadata,
        **notebook.metadata,
        "language_info": stored.metadata.get("language_info", notebook.metadata["language_info"]),
    }


def sync(name: str) -> tuple[Path, bool]:
    """Write ``book/<name>.ipynb`` from its source, keeping the outputs of unchanged cells; return (path, changed)."""
    path = BOOK / f"{name}.ipynb"
    notebook = expected_notebook(name)
    stored = nbformat.read(path, as_version=4) if path.is_file() else nbformat.v4.new_notebook()
    keep_outputs(notebook, stored)
    if notebook == stored:
        return path, False
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return path, True


def needs_execution(path: Path) -> bool:
    """True when a code cell of the notebook has never run (a new or changed cell)."""
    notebook = nbformat.read(path, as_version=4)
    return any(
        cell.cell_type == "code"
        and cell.source.strip()
        and cell.execution_count is None
        and "colab-setup" not in cell.metadata.get("tags", [])
        for cell in notebook.cells
    )


def execute(path: Path, timeout: int = 1200) -> float:
    """Run every cell of the notebook at ``path`` in place (working folder: the notebook's); return seconds."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook in place after syncing it")
    parser.add_argument(
        "--changed-only",
        action="store_true",
        help="with --execute: run only the notebooks that have a cell that never ran",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    parser.add_argument("--list", action="store_true", help="print the chapters in the order of _toc.yml")
    parser.add_argument("chapters", nargs="*", help="chapter numbers or names (default: every chapter in _toc.yml)")
    args = parser.parse_args(argv)
    try:
        names = [chapters.resolve(key) for key in args.chapters] or chapters.chapters()
    except ValueError as error:
        parser.error(str(error))
    if args.list:
        print("\n".join(names))
        return 0
    if args.check:
        stale = {name: problems for name in names if (problems := cell_differences(name))}
        for name, problems in stale.items():
            print(f"book/{name}.ipynb disagrees with book/_src/{name}.py: {'; '.join(problems[:3])}", file=sys.stderr)
        if stale:
            print("run: python book/_src/build.py " + " ".join(stale), file=sys.stderr)
        return 1 if stale else 0
    for name in names:
        path, changed = sync(name)
        print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(chapters.REPO)}")
        if args.execute and (not args.changed_only or needs_execution(path)):
            print(f"executed {path.relative_to(chapters.REPO)} in {execute(path):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
