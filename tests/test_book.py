"""The book: table of contents, sources in sync with notebooks, set-up cells, conventions, and the built site.

The tests marked ``browser`` read the site that ``make site`` built in ``_build/html``; ``make test``
runs them after building it.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "_build" / "html"


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (the scripts are not part of the package)."""
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


setup_cell = load_script("setup_cell")
chapters = load_script("chapters")
CHAPTERS = chapters.chapters()  # the chapter list is written once, in _toc.yml


def load_build():
    """``book/_src/build.py``, the script that syncs the notebooks with their sources."""
    spec = importlib.util.spec_from_file_location("build", REPO / "book" / "_src" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build()


def colab_link(name: str) -> str:
    """The launch button's address for chapter ``name``, derived from _config.yml's repository (any fork's)."""
    url, branch = setup_cell.repository()
    return f"colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{branch}/book/{name}.ipynb"


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def read_chapter(name: str):
    path = REPO / "book" / f"{name}.ipynb"
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    return nbformat.read(path, as_version=4)


# --- configuration ----------------------------------------------------------------------------------


def test_toc_lists_every_chapter_source_in_order():
    sources = sorted(path.stem for path in (REPO / "book" / "_src").glob("0*.py"))
    assert CHAPTERS == sources, "every book/_src/0*.py must be listed in _toc.yml, in order"
    assert CHAPTERS[0] == "01_introduction" and len(CHAPTERS) >= 6
    notebooks = [path for path in setup_cell.chapter_paths() if path.suffix == ".ipynb"]
    assert notebooks[: len(CHAPTERS)] == [REPO / "book" / f"{name}.ipynb" for name in CHAPTERS]


def test_toc_reader_follows_parts_and_sections(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/01_a\nparts:\n  - chapters:\n    - file: book/02_b\n"
        "      sections:\n      - file: book/03_c.ipynb\n    - file: book/instructors.md\n"
    )
    assert chapters.toc_files(toc) == ["book/01_a", "book/02_b", "book/03_c", "book/instructors"]
    toc.write_text("- just a list\n")
    with pytest.raises(ValueError, match="_toc.yml: expected a jb-book table of contents"):
        chapters.toc_files(toc)


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_agrees_with_its_source(name):
    problems = build.cell_differences(name)
    assert not problems, (
        f"book/{name}.ipynb disagrees with book/_src/{name}.py: {problems[:3]}; "
        f"run python book/_src/build.py {name[:2]}"
    )


def test_a_changed_source_is_detected_and_sync_keeps_unchanged_outputs(tmp_path, monkeypatch):
    name = "05_measuring_segmentation"
    monkeypatch.setattr(build, "BOOK", tmp_path)
    stored = nbformat.read(REPO / "book" / f"{name}.ipynb", as_version=4)
    edited = nbformat.from_dict(stored)
    edited.cells[4].source += "\n# edited in the notebook, not in the source"
    nbformat.write(edited, tmp_path / f"{name}.ipynb")
    assert build.cell_differences(name) == [
        f"cell 4 ({edited.cells[4].cell_type}, {stored.cells[4].source.splitlines()[0][:60]!r}) differs"
    ]
    assert build.main(["--check", "05"]) == 1
    path, changed = build.sync(name)
    assert changed and build.cell_differences(name) == []
    synced = nbformat.read(path, as_version=4)
    assert synced.cells[4].source == stored.cells[4].source and synced.cells[4].id != stored.cells[4].id
    synced.cells[4].id = stored.cells[4].id
    assert synced == stored  # every output and id kept; the edited cell came back as in the source
    assert build.sync(name) == (path, False)


def test_build_refuses_an_unknown_chapter(capsys):
    with pytest.raises(SystemExit):
        build.main(["--list", "99"])
    assert "unknown chapter '99'" in capsys.readouterr().err


def test_config_builds_offline_from_stored_outputs():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["repository"]["path_to_book"] == ""
    assert setup_cell.GITHUB.match(config["repository"]["url"]) and config["repository"]["branch"]
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert {"dollarmath", "amsmath"} <= set(config["parse"]["myst_enable_extensions"])
    sphinx = config["sphinx"]["config"]
    assert not sphinx["mathjax_path"].startswith(("http:", "https:", "//"))
    assert "sphinx_thebe" not in sphinx["extensions"]  # it would load thebe from unpkg.com


# --- the set-up cell --------------------------------------------------------------------------------


def test_setup_cell_pins_the_version_and_falls_back_to_the_configured_repository(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/someone/fork/\n  branch: dev\n")
    source = setup_cell.setup_cell_source(config, version="9.8.7")
    assert '"fcn-tutorial==9.8.7"' in source
    assert '"fcn-tutorial @ git+https://github.com/someone/fork@dev"' in source
    assert 'find_spec("fcn_tutorial") is not None' in source and "FCN_TUTORIAL_INSTALL" in source
    compile(source, "setup-cell", "exec")
    import fcn_tutorial

    assert f'"fcn-tutorial=={fcn_tutorial.__version__}"' in setup_cell.setup_cell_source(config)
    config.write_text("repository:\n  url: https://github.com/someone/fork\n")
    with pytest.raises(ValueError, match="repository.branch"):
        setup_cell.setup_cell_source(config)
    config.write_text("repository:\n  url: https://gitlab.com/someone/fork\n  branch: main\n")
    with pytest.raises(ValueError, match="not https://github.com/<owner>/<name>"):
        setup_cell.setup_cell_source(config)


def test_setup_cell_says_in_one_line_that_the_package_is_installed(capsys):
    import fcn_tutorial

    exec(setup_cell.setup_cell_source(), {})
    said = capsys.readouterr().out
    assert said == f"fcn_tutorial {fcn_tutorial.__version__} is already installed: nothing to install.\n"


def test_repository_check_names_the_fix_for_a_fork(tmp_path, capsys):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/Owner/Book\n  branch: main\n")
    assert setup_cell.check_repository("owner/book", config) is None  # GitHub names ignore case
    problem = setup_cell.check_repository("someone/fork", config)
    assert "repository.url is https://github.com/Owner/Book but this is github.com/someone/fork" in problem
    assert "set repository.url to https://github.com/someone/fork" in problem
    url, _ = setup_cell.repository()
    assert setup_cell.main(["--repository", url.removeprefix("https://github.com/")]) == 0
    assert setup_cell.main(["--repository", "someone/fork"]) == 1
    assert "set repository.url to https://github.com/someone/fork" in capsys.readouterr().err


def test_readme_writes_no_copy_of_the_repository_url():
    url, _ = setup_cell.repository()
    name = url.rsplit("/", 1)[1]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    copies = set(re.findall(rf"github\.com/[\w.-]+/{re.escape(name)}\b", readme))
    assert copies <= {url.removeprefix("https://")}, (
        f"README.md names {sorted(copies)}; point at _config.yml's repository.url instead of copying it"
    )


def test_setup_cell_is_inserted_then_updated_in_place(tmp_path):
    path = tmp_path / "chapter.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")])
    nbformat.write(notebook, path)
    source = setup_cell.setup_cell_source()
    assert setup_cell.apply(path, source) is True
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].source == source and tags(cells[0])[:2] == ["colab-setup", "hide-cell"]
    assert cells[1].source == "# Title"
    assert setup_cell.apply(path, source) is False  # already up to date: the file is not rewritten
    assert setup_cell.apply(path, source + "\n# changed") is True
    assert len(nbformat.read(path, as_version=4).cells) == 2


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_starts_with_the_current_setup_cell(name):
    first = read_chapter(name).cells[0]
    assert "colab-setup" in tags(first), f"{name}: the first cell is not tagged colab-setup"
    assert first.source == setup_cell.setup_cell_source(), (
        f"{name}: the set-up cell is out of date; run python scripts/setup_cell.py"
    )


# --- chapter conventions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_follows_the_book_conventions(name):
    notebook = read_chapter(name)
    path = REPO / "book" / f"{name}.ipynb"
    assert path.stat().st_size < 2 * 1024 * 1024, f"{name} is larger than 2 MB"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(
        cell.get("execution_count") or not cell.source.strip() or "colab-setup" in tags(cell) for cell in code
    ), f"{name}: some code cells were never executed; run make notebooks"
    # Only the test cells of the exercises may fail (their hint is the error); nbval and the site accept them.
    errors = [
        output
        for cell in code
        if "raises-exception" not in tags(cell)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert not errors, f"{name}: stored outputs contain errors: {[e.get('ename') for e in errors]}"
    checked = [cell for cell in code if cell.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) >= 3, f"{name}: only {len(checked)} cells start with # NBVAL_CHECK_OUTPUT"
    headings = [
        line
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("#")
    ]
    assert any(re.match(r"^#+ Exercises", line) for line in headings), f"{name}: no Exercises section"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and re.search(r"\.widget\(\)\s*$", cell.source):
            assert "remove-output" in tags(cell), f"{name}: widget cell {index} is not tagged remove-output"
        assert "solution" not in tags(cell), f"{name}: cell {index} is a solution cell"


# --- the built site (after `make site`) -------------------------------------------------------------


def built_page(name: str) -> str:
    page = SITE / "book" / f"{name}.html"
    if not page.is_file():
        pytest.fail(f"{page.relative_to(REPO)} not found: build the site first (make site)")
    return page.read_text(encoding="utf-8")


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_launch_button_opens_the_chapter_in_colab(name):
    assert colab_link(name) in built_page(name)


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_pages_load_nothing_from_the_internet(name):
    page = built_page(name)
    remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', page)
    assert not [url for url in remote if "127.0.0.1" not in url], remote
    assert (SITE / "_static" / "mathjax" / "tex-chtml.js").is_file()


@pytest.mark.browser
def test_every_page_works_in_headless_chromium():
    browser_check = load_script("browser_check")
    reports = browser_check.check_site(SITE, REPO / "_build" / "screenshots")
    problems = {report.path: report.problems for report in reports if report.problems}
    assert not problems, json.dumps(problems, indent=1)
    by_path = {report.path: report for report in reports}
    for name in CHAPTERS:
        report = by_path[f"book/{name}.html"]
        assert Path(report.screenshot).stat().st_size > 10_000, f"{name}: empty screenshot"
        assert report.images > 0 or name == "01_introduction", f"{name}: no figure on the page"
    assert sum(by_path[f"book/{name}.html"].equations for name in CHAPTERS) > 0, "no equation rendered anywhere"


@pytest.mark.browser
def test_no_solution_text_anywhere_on_the_site():
    """Solutions, hidden tests and model answers are in no page, no downloadable notebook, no file of the site."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"{SITE.relative_to(REPO)} not found: build the site first (make site)")
    hidden = {line for name in CHAPTERS for line in chapters.solution_texts(chapters.source_notebook(name))}
    assert len(hidden) > 50
    files = [
        path
        for path in SITE.rglob("*")
        if path.is_file() and path.suffix in {".html", ".ipynb", ".md", ".txt", ".js", ".json", ".py"}
    ]
    assert any(path.suffix == ".ipynb" for path in files), "no downloadable notebook found in the site"
    leaks = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        variants = {
            line: (line, line.replace('"', '\\"'), html.escape(line), html.escape(line, quote=False)) for line in hidden
        }
        found = [line for line, forms in variants.items() if any(form in text for form in forms)]
        if found:
            leaks[str(path.relative_to(SITE))] = found[:3]
    assert not leaks, json.dumps(leaks, indent=1)


def test_chapter_6_fetches_its_results_from_the_repository_when_opened_alone(tmp_path, monkeypatch):
    """On Colab only the notebook is there: the 30-minute results come from the book's repository (a local
    server standing in for it), into the same results/ folder, and read as the repository's own files."""
    import functools
    import http.server
    import threading

    import matplotlib

    matplotlib.use("Agg")
    notebook = nbformat.read(REPO / "book" / "06_training.ipynb", as_version=4)
    [cell] = [cell for cell in notebook.cells if cell.cell_type == "code" and "RESULTS, SEEDS" in cell.source]
    setup = notebook.cells[0].source
    url, branch = setup_cell.repository()
    assert f'BOOK_FILES = "{url.replace("github.com", "raw.githubusercontent.com")}/{branch}/book"' in setup
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REPO / "book"))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.chdir(tmp_path)  # no results/ here
    from fcn_tutorial.config import TrainConfig
    from fcn_tutorial.history import plot_history

    # what the chapter imported before this cell
    namespace = {"Path": Path, "json": json, "plot_history": plot_history, "TrainConfig": TrainConfig}
    namespace["BOOK_FILES"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        exec(compile(cell.source, "chapter 6", "exec"), namespace)
    finally:
        server.shutdown()
    for seed in namespace["SEEDS"]:
        mine = json.loads((REPO / "book" / "results" / "cpu-30min" / f"seed{seed}.json").read_text(encoding="utf-8"))
        assert namespace["quality"][seed] == mine
    assert sorted(path.name for path in (tmp_path / "results" / "cpu-30min").iterdir()) == [
        f"seed{seed}.json" for seed in namespace["SEEDS"]
    ]
    assert sorted(path.name for path in (REPO / "book" / "results" / "cpu-30min").glob("seed*.json")) == [
        f"seed{seed}.json" for seed in namespace["SEEDS"]
    ]  # the chapter names every seed that was run


def test_every_figure_of_the_chapters_has_alt_text():
    """A screen reader reads a figure's alt text: each code cell that draws one says what it shows."""
    missing = []
    for chapter in sorted((REPO / "book").glob("[0-9]*.ipynb")):
        for index, cell in enumerate(nbformat.read(chapter, as_version=4).cells):
            images = [o for o in cell.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {}))]
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            if images and len(alt) < 20:
                missing.append(f"{chapter.name} cell {index}")
    assert not missing, f'figures without alt text (# %% mystnb={{"image": {{"alt": ...}}}}): {missing}'
