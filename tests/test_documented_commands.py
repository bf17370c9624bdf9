"""Every ``fcn-tutorial`` command that the README and the chapters show parses with today's command line.

A reader copies these commands. When an option is renamed or a choice removed, the docs must change with
it; this test reads every command in a fenced code block of README.md and of the chapters' sources (and the
commands the chapters print into their stored outputs) and parses it with :func:`fcn_tutorial.cli.build_parser`,
without running it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import nbformat
import pytest

from fcn_tutorial.cli import build_parser
from fcn_tutorial.config import config_from_args

REPO = Path(__file__).resolve().parents[1]
ENVIRONMENT = re.compile(r"^(?:[A-Z_]+=\S+\s+)+")  # FCN_TUTORIAL_DATA=../shared/data fcn-tutorial ...


def _commands(lines: list[str]) -> list[str]:
    """The ``fcn-tutorial ...`` commands in ``lines`` (code only), continuation lines joined, comments cut."""
    commands, pending = [], None
    for line in lines:
        line = line.rstrip()
        if pending is not None:
            pending += " " + line.rstrip("\\").strip()
            if not line.endswith("\\"):
                commands.append(pending)
                pending = None
            continue
        text = ENVIRONMENT.sub("", line.strip())
        if not text.startswith("fcn-tutorial "):
            continue
        if line.endswith("\\"):
            pending = text.rstrip("\\").strip()
        else:
            commands.append(text)
    return [re.split(r"\s+#\s", command)[0].strip() for command in commands]


def _fenced(text: str, comment: str = "") -> list[str]:
    """The lines inside ``` fences of a Markdown text (or of Markdown written as ``comment``-prefixed lines)."""
    lines, inside = [], False
    for line in text.splitlines():
        if comment:
            if not line.startswith(comment.rstrip()):
                inside = False
                continue
            line = line[len(comment) :] if line.startswith(comment) else ""
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(line)
    return lines


def documented_commands() -> list[tuple[str, str]]:
    found = [("README.md", c) for c in _commands(_fenced((REPO / "README.md").read_text(encoding="utf-8")))]
    for source in sorted((REPO / "book" / "_src").glob("[0-9]*.py")):
        found += [(source.name, c) for c in _commands(_fenced(source.read_text(encoding="utf-8"), comment="# "))]
    for chapter in sorted((REPO / "book").glob("[0-9]*.ipynb")):
        notebook = nbformat.read(chapter, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stdout":
                    found += [(f"{chapter.name} (output)", c) for c in _commands(output["text"].splitlines())]
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_every_kind():
    words = {shlex.split(command)[1] for _, command in COMMANDS}
    assert {"train", "evaluate", "threshold", "predict", "data"} <= words
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w}: {c[:60]}" for w, c in COMMANDS])
def test_a_documented_command_parses(where, command, capsys):
    words = [re.sub(r"<([a-z]+)>", r"\1", word) for word in shlex.split(command)[1:]]  # <run> is a placeholder
    try:
        args = build_parser().parse_args(words)
    except SystemExit as stop:
        pytest.fail(f"{where}: `{command}` does not parse: {capsys.readouterr().err.strip().splitlines()[-1]}")
        raise AssertionError from stop
    if args.command == "train" and not args.resume:
        config_from_args(args)  # and its values are in range (TrainConfig checks them)
