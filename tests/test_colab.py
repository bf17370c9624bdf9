"""Google Colab, imitated: the distribution, and the chapters run where ``fcn_tutorial`` is not installed.

Colab preinstalls torch, torchvision, numpy, matplotlib, pillow, ipykernel and ipywidgets 7.7, but not
this package; each chapter's set-up cell installs it. These tests build the wheel, make a fresh virtual
environment like that, and run chapters 1 and 3 there with ``FCN_TUTORIAL_INSTALL`` pointing at the wheel.

Copying torch into a new environment would cost gigabytes, so the new one sees this environment's
packages (pip included) through a ``.pth`` file that names a folder of links to them, leaving out ``fcn_tutorial`` (its
editable-install hook and its metadata) and ipywidgets 8. ipywidgets 7.7 comes from the wheels that
``make colab-wheels`` downloads into ``_build/colab-wheels``; nothing here uses the network.

Run them alone with ``pytest -m colab``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.colab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "_build" / "colab-wheels"
COLAB_WIDGETS = ["ipywidgets==7.7.*", "widgetsnbextension==3.6.*", "jupyterlab_widgets==1.*", "ipython_genutils"]
HIDDEN = ("fcn_tutorial", "__editable__", "ipywidgets", "widgetsnbextension", "jupyterlab_widgets")
CHAPTERS = ["01_introduction", "03_data"]
KERNEL = "colab-like"

_spec = importlib.util.spec_from_file_location("setup_cell", REPO / "scripts" / "setup_cell.py")
setup_cell = importlib.util.module_from_spec(_spec)  # a script, not part of the package
_spec.loader.exec_module(setup_cell)


def run(*command, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``command`` outside the checkout (from its folder, ``python -c`` would import fcn_tutorial)."""
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=tempfile.gettempdir(),
    )


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what makes our checkout importable, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "FCN_TUTORIAL_INSTALL")
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", **extra)  # pip never asks PyPI here
    return env


def make_venv(folder: Path) -> Path:
    """A new virtual environment that sees this one's packages except fcn_tutorial and ipywidgets 8."""
    run(sys.executable, "-m", "venv", "--without-pip", folder).check_returncode()
    view = folder / "preinstalled"
    view.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(HIDDEN) and entry.suffix != ".pth":
            (view / entry.name).symlink_to(entry)
    python = folder / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "colab-preinstalled.pth").write_text(f"{view}\n")  # a path line: sys.path only, no import hook
    return python


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, built from this checkout as ``make dist`` builds them (without the network)."""
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (path,) = dist.glob("fcn_tutorial-*.whl")
    return path


@pytest.fixture(scope="module")
def colab_python(tmp_path_factory) -> Path:
    """The Python of a Colab-like environment: no fcn_tutorial, ipywidgets 7.7."""
    if not (WHEELS / ".downloaded").is_file():
        pytest.skip(f"{WHEELS.relative_to(REPO)} is missing: run make colab-wheels (it downloads ipywidgets 7.7)")
    python = make_venv(tmp_path_factory.mktemp("colab") / "venv")
    installed = run(
        python, "-m", "pip", "install", "--quiet", "--no-deps", "--find-links", WHEELS, *COLAB_WIDGETS, env=clean_env()
    )
    assert installed.returncode == 0, installed.stderr
    return python


def test_distribution_holds_the_package_only_and_passes_twine(dist, wheel):
    import fcn_tutorial

    version = fcn_tutorial.__version__
    names = zipfile.ZipFile(wheel).namelist()
    outside = [name for name in names if not name.startswith(("fcn_tutorial/", f"fcn_tutorial-{version}.dist-info/"))]
    assert not outside, f"the wheel holds more than the package: {outside}"
    assert "fcn_tutorial/widgets.py" in names and "fcn_tutorial/models/fcn.py" in names
    metadata = zipfile.ZipFile(wheel).read(f"fcn_tutorial-{version}.dist-info/METADATA").decode()
    assert "Name: fcn-tutorial\n" in metadata and f"Version: {version}\n" in metadata
    assert "Requires-Dist: ipywidgets<9,>=7.7" in metadata
    (sdist,) = dist.glob("fcn_tutorial-*.tar.gz")
    members = [name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name]
    assert not [
        name
        for name in members
        if name.startswith(("book", "data", "runs", "benchmarks", "_build"))
        or name.endswith((".ipynb", ".pt", ".jpg", ".png"))
    ], members
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir())
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_colab_like_environment_lacks_the_package_and_has_ipywidgets_7(colab_python):
    probe = (
        "import importlib.metadata as m, importlib.util as u, ipywidgets, torch, torchvision, matplotlib, PIL\n"
        "print(u.find_spec('fcn_tutorial'), ipywidgets.__version__)\n"
        "print(sorted(d.metadata['Name'] for d in m.distributions() if 'fcn' in d.metadata['Name']))"
    )
    done = run(colab_python, "-c", probe, env=clean_env())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("None 7.7.") and lines[1] == "[]", done.stdout  # not importable, not even metadata


def test_setup_cell_stops_with_one_sentence_when_it_cannot_install(tmp_path):
    python = make_venv(tmp_path / "venv")  # its own environment: the chapters' test installs into the other
    source = setup_cell.setup_cell_source()
    missing = tmp_path / "fcn_tutorial-0.0.0-py3-none-any.whl"
    for env, spec in [
        (clean_env(FCN_TUTORIAL_INSTALL=str(missing)), str(missing)),  # a wrong spec
        (clean_env(GIT_ALLOW_PROTOCOL="file"), "fcn-tutorial=="),
    ]:  # offline: no PyPI, no GitHub
        done = run(python, "-c", source, env=env)
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode == 1 and last.startswith(f"RuntimeError: Could not install {spec}"), done.stderr
        assert last.endswith("set FCN_TUTORIAL_INSTALL to a wheel file or a git URL, then run this cell again")
        assert "Traceback" not in last and "pip._internal" not in done.stderr  # pip's own traceback stays hidden


def test_chapters_install_the_wheel_and_run_on_colab(colab_python, wheel, tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    for name in CHAPTERS:  # the committed chapters, with the set-up cell of this checkout
        notebook = nbformat.read(REPO / "book" / f"{name}.ipynb", as_version=4)
        nbformat.write(notebook, book / f"{name}.ipynb")
        setup_cell.apply(book / f"{name}.ipynb", setup_cell.setup_cell_source())
    kernel = colab_python.parents[1] / "share" / "jupyter" / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(colab_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Colab-like",
                "language": "python",
            }
        )
    )
    execute = textwrap.dedent(f"""
        import sys
        from pathlib import Path

        import nbformat
        from nbclient import NotebookClient

        for path in map(Path, sys.argv[1:]):
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(notebook, timeout=600, kernel_name={KERNEL!r}, store_widget_state=False,
                           resources={{"metadata": {{"path": str(path.parent)}}}}).execute()
            nbformat.write(notebook, path)
    """)
    env = clean_env(
        FCN_TUTORIAL_INSTALL=str(wheel),
        FCN_TUTORIAL_PROFILE="quick",
        CUDA_VISIBLE_DEVICES="",
        JUPYTER_PATH=str(colab_python.parents[1] / "share" / "jupyter"),
    )
    done = run(colab_python, "-c", execute, *(book / f"{name}.ipynb" for name in CHAPTERS), env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    first, third = (nbformat.read(book / f"{name}.ipynb", as_version=4) for name in CHAPTERS)
    said = "".join(output.get("text", "") for output in first.cells[0].outputs)
    assert said.startswith(f"installed {wheel}; GPU: none"), said  # chapter 1 installed the package
    said = "".join(output.get("text", "") for output in third.cells[0].outputs)
    assert said.startswith("fcn_tutorial ") and "already installed" in said, said  # chapter 3 found it
    for name, notebook in zip(CHAPTERS, (first, third)):
        code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
        assert all(cell.execution_count for cell in code), f"{name}: some cells did not run"
        # only the exercise checks may fail (tagged raises-exception: the student has not answered yet)
        unexpected = [
            o
            for cell in code
            if "raises-exception" not in cell.metadata.get("tags", [])
            for o in cell.outputs
            if o.output_type == "error"
        ]
        assert not unexpected, name
    widgets = [
        o
        for cell in third.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets, "03_data: the data browser did not display as a widget under ipywidgets 7.7"
    where = run(colab_python, "-c", "import fcn_tutorial; print(fcn_tutorial.__file__)", env=clean_env())
    assert where.stdout.startswith(str(colab_python.parents[1])), where.stdout  # the wheel, in the new venv


def test_widgets_pass_their_tests_on_ipywidgets_7(colab_python):
    tested = run(
        colab_python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        REPO / "tests" / "test_widgets.py",
        env=clean_env(PYTHONPATH=str(REPO)),
        timeout=300,
    )  # this checkout's widgets, ipywidgets 7.7
    assert tested.returncode == 0 and " passed" in tested.stdout, tested.stdout[-3000:] + tested.stderr[-2000:]
