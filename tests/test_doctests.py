"""Every example in the package's docstrings runs and gives the output it shows.

``make test`` runs ``pytest tests``, so the doctests are collected here rather than with
``--doctest-modules`` (which would need ``fcn_tutorial`` on the command line as well).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fcn_tutorial

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(fcn_tutorial.__path__, "fcn_tutorial.")
    if not info.name.endswith("__main__")  # importing it runs the command line
)


def test_the_module_list_is_complete():
    assert {
        "fcn_tutorial.models.fcn",
        "fcn_tutorial.exercises",
        "fcn_tutorial.metrics",
        "fcn_tutorial.scoring",
        "fcn_tutorial.config",
        "fcn_tutorial.data.loaders",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False, report=True
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (printed above)"


@pytest.mark.parametrize(
    "name",
    [
        "fcn_tutorial.models",
        "fcn_tutorial.models.summary",
        "fcn_tutorial.metrics",
        "fcn_tutorial.scoring",
        "fcn_tutorial.config",
    ],
)
def test_the_modules_that_teach_by_example_have_examples(name):
    assert doctest.testmod(importlib.import_module(name), verbose=False, report=False).attempted > 0
