"""The stored CPU quality results agree with the recipe that the README prints and benchmarks/quality.py runs."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest

from fcn_tutorial.config import TrainConfig, add_config_arguments, config_from_args

REPO = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(REPO / "benchmarks"))
from quality import RECIPE  # noqa: E402

RESULTS = REPO / "book" / "results" / "cpu-30min"
RECIPE_RUNS = sorted(RESULTS.glob("seed*.json"))


def recipe_settings(*extra: str) -> dict:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    config, _ = config_from_args(parser.parse_args([*RECIPE, *extra, "--out", "runs/x"]))
    return json.loads(config.to_json())


def test_there_are_at_least_two_seeds_of_the_recipe():
    assert len(RECIPE_RUNS) >= 2, [path.name for path in RECIPE_RUNS]


@pytest.mark.parametrize("path", RECIPE_RUNS, ids=lambda path: path.name)
def test_each_recipe_result_was_trained_with_the_recipe(path):
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["recipe"] == " ".join(RECIPE)
    expected = recipe_settings("--seed", str(result["settings"]["seed"]))
    # options added since the run are read at their defaults, as a checkpoint of that run would be
    trained = json.loads(TrainConfig.from_dict(result["settings"]).to_json())
    assert {key: value for key, value in trained.items() if key != "out"} == {
        key: value for key, value in expected.items() if key != "out"
    }
    assert result["epochs_done"] == len(result["history"]) <= expected["epochs"]
    assert result["recipe_s"] < 30 * 60  # the budget: training, the threshold sweep and the test scoring
    assert {"test", "test_tta", "val", "threshold_sweep", "test_tta_threshold"} <= set(result["scores"])


@pytest.mark.parametrize("path", RECIPE_RUNS, ids=lambda path: path.name)
def test_the_threshold_was_chosen_on_validation(path):
    result = json.loads(path.read_text(encoding="utf-8"))
    sweep = result["scores"]["threshold_sweep"]  # fcn-tutorial threshold --split val --tta
    best = max(zip(sweep["jaccard"], sweep["thresholds"]), key=lambda pair: (pair[0], -abs(pair[1] - 0.5)))
    assert result["threshold"] == sweep["best"] == best[1]
    # the validation score at that threshold, rescored with evaluate --threshold, is the sweep's
    val = result["scores"]["val_tta_threshold"]
    assert val["jaccard"][1] == pytest.approx(best[0], abs=1e-9)


def test_the_readme_prints_the_same_recipe():
    readme = REPO.joinpath("README.md").read_text(encoding="utf-8")
    commands = re.findall(r"fcn-tutorial train --data kvasir-seg --model fcn8s[^`]*?--out", readme, re.S)
    recipes = [command for command in commands if "--time-limit" in command]  # the 30-minute recipe
    assert len(recipes) == 1, f"expected one 30-minute CPU recipe command in the README, found {len(recipes)}"
    command = recipes[0]
    printed = " ".join(command.replace("\\\n", " ").split()[2:-1])  # without "fcn-tutorial train", "--out"
    assert printed == " ".join(option for option in RECIPE if option != "--no-progress") + " --seed 0"


LEVER_RUNS = sorted((RESULTS / "levers").glob("*.json"))


@pytest.mark.parametrize("path", RECIPE_RUNS + LEVER_RUNS, ids=lambda path: path.name)
def test_the_readme_table_of_levers_prints_each_runs_own_scores(path):
    # one row per run: its validation and test scores at its own threshold, as the JSON holds them
    result = json.loads(path.read_text(encoding="utf-8"))
    scores = result["scores"]
    val = scores["val_tta_threshold"]["jaccard"][1]
    test = scores["test_tta_threshold"]
    cells = [
        f"| {val:.3f} | {result['threshold']:.2f} | {test['jaccard'][1]:.3f} / {test['per_image_jaccard'][1]:.3f} |",
        f"{result['epochs_done']} ({result['recipe_s'] / 60:.1f} min",
    ]
    readme = REPO.joinpath("README.md").read_text(encoding="utf-8")
    rows = [line.replace("**", "") for line in readme.splitlines() if line.startswith("| ")]
    assert any(all(cell in row for cell in cells) for row in rows), f"no README row reads {cells}"


def test_the_readme_gpu_commands_are_the_full_profile():
    from fcn_tutorial.config import train_command
    from fcn_tutorial.profiles import VARIANTS, current_profile

    full, coarser, commands = current_profile("full", device="cuda"), None, []
    for name in VARIANTS:  # as chapter 6 prints them
        config = full.stage_config(
            name,
            data="kvasir-seg",
            download=coarser is None,
            out=f"runs/{name}",
            init_from=f"runs/{coarser}/best.pt" if coarser else None,
        )
        commands.append(train_command(config, width=110))
        coarser = name
    assert "```bash\n" + "\n".join(commands) + "\n```" in (REPO / "README.md").read_text(encoding="utf-8")
    chapter = (REPO / "book" / "_src" / "06_training.py").read_text(encoding="utf-8")
    # the same configs; the chapter wraps them for the site's narrower column
    assert "print(train_command(config, width=78))" in chapter and "download=coarser is None" in chapter
