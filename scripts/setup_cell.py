"""Write the set-up cell at the top of every chapter of the book.

The first cell of each chapter (tagged ``colab-setup``) makes ``fcn_tutorial`` importable:

* where it is installed already (this repository after ``make install``), it says so in one line;
* where it is missing (Google Colab), it installs ``fcn-tutorial==<version>`` from PyPI, the version
  in ``fcn_tutorial/__init__.py`` when the book was built, as d2l's ``pip install d2l==1.0.3`` does;
* ``FCN_TUTORIAL_INSTALL`` replaces that spec with anything pip accepts: a wheel path, or a fork's
  ``git+https://github.com/<you>/<fork>@<branch>``;
* when the pinned version is not on PyPI, it falls back to the repository and branch of ``_config.yml``
  (``repository.url``, ``repository.branch``), and says so;
* when nothing installs (no network, a wrong spec), it stops with one sentence that says what to do.

Usage::

    python scripts/setup_cell.py                # rewrite the cell in every chapter listed in _toc.yml
    python scripts/setup_cell.py --check        # exit 1 and name the chapters whose cell is out of date
    python scripts/setup_cell.py --repository OWNER/NAME   # exit 1 unless _config.yml points there

This script does not import ``fcn_tutorial``: it runs before the package is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]
TAG = "colab-setup"
TAGS = [TAG, "hide-cell"]  # hide-cell: the site folds the cell away; Colab shows it
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)/?$")

TEMPLATE = '''\
# Set-up: install this book's package, fcn-tutorial {version}, where it is missing (on Google Colab).
# To try another build (a fork's branch, a wheel), set FCN_TUTORIAL_INSTALL to what pip should install.
import importlib.util
import os
import subprocess
import sys

# The book's own files (its results/ folder), for a chapter opened without the repository beside it (Colab).
BOOK_FILES = "{raw}/{branch}/book"


def pip_install(spec):
    """Install ``spec`` with pip; return None when it worked, else pip's last line of output."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", spec], capture_output=True, text=True)
    lines = (done.stderr.strip() or done.stdout.strip() or "pip printed nothing").splitlines()
    return None if done.returncode == 0 else lines[-1]


if importlib.util.find_spec("fcn_tutorial") is not None:
    import fcn_tutorial

    print(f"fcn_tutorial {{fcn_tutorial.__version__}} is already installed: nothing to install.")
else:
    specs = [os.environ["FCN_TUTORIAL_INSTALL"]] if os.environ.get("FCN_TUTORIAL_INSTALL") else [
        "fcn-tutorial=={version}",  # from PyPI; where that version is not there, from the book's repository:
        "fcn-tutorial @ git+{url}@{branch}"]
    for spec in specs:
        failure = pip_install(spec)
        if failure is None:
            break
    if failure is not None:
        raise RuntimeError(f"Could not install {{' or '.join(specs)}} (pip: {{failure}}); check that this runtime "
                           "has internet access or set FCN_TUTORIAL_INSTALL to a wheel file or a git URL, then run "
                           "this cell again")
    importlib.invalidate_caches()
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (Runtime > Change runtime type > GPU)"
    print(f"installed {{spec}}; GPU: {{gpu}}")'''


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open(encoding="utf-8") as file:
        content = yaml.safe_load(file)
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return content


def repository(config_path: Path = REPO / "_config.yml") -> tuple[str, str]:
    """``(url, branch)`` of the book's GitHub repository, the one place it is written (``_config.yml``)."""
    section = read_yaml(config_path).get("repository") or {}
    url, branch = str(section.get("url") or "").rstrip("/"), section.get("branch")
    if not url or not branch:
        raise ValueError(f"{config_path}: repository.url and repository.branch must both be set")
    if not GITHUB.match(url):
        raise ValueError(
            f"{config_path}: repository.url {url!r} is not https://github.com/<owner>/<name>; "
            "the launch buttons and the set-up cell need a GitHub repository"
        )
    return url, str(branch)


def package_version(init_path: Path = REPO / "fcn_tutorial" / "__init__.py") -> str:
    """The package's version, read from ``__version__ = "..."`` (its single source) without importing it."""
    match = re.search(r'^__version__ = "([^"]+)"', init_path.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:
        raise ValueError(f'{init_path}: no line __version__ = "X.Y.Z"; the set-up cell pins that version')
    return match[1]


def setup_cell_source(config_path: Path = REPO / "_config.yml", version: str | None = None) -> str:
    """The set-up cell's code: pins ``version`` (default: the package's); falls back to the configured repository."""
    url, branch = repository(config_path)
    raw = url.replace("https://github.com/", "https://raw.githubusercontent.com/", 1)
    return TEMPLATE.format(version=version or package_version(), url=url, branch=branch, raw=raw)


def check_repository(expected: str, config_path: Path = REPO / "_config.yml") -> str | None:
    """None when ``config_path``'s repository.url is github.com/``expected`` (``owner/name``), else what to fix."""
    url, _ = repository(config_path)
    configured = "/".join(GITHUB.match(url).group("owner", "name"))
    if configured.lower() == expected.lower():
        return None
    return (
        f"{config_path.name}: repository.url is {url} but this is github.com/{expected}; set repository.url to "
        f"https://github.com/{expected} so that the launch buttons and the set-up cells open this repository"
    )


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
    parser.add_argument(
        "--repository",
        metavar="OWNER/NAME",
        help="change nothing; exit 1 unless _config.yml's repository.url is github.com/OWNER/NAME",
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to update (default: every chapter in _toc.yml)"
    )
    args = parser.parse_args(argv)
    if args.repository:
        problem = check_repository(args.repository)
        print(
            problem or f"_config.yml points at github.com/{args.repository}", file=sys.stderr if problem else sys.stdout
        )
        return 1 if problem else 0
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
        print(
            f"the set-up cell is missing or out of date in: {names}; run python scripts/setup_cell.py", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
