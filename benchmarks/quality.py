"""Quality per CPU-minute: train the README's CPU recipe, score it on the test split, write one JSON (issue 10).

The run is the package's own ``fcn-tutorial train`` (:func:`fcn_tutorial.run.train`) with the recipe
below; extra options go to it unchanged (``--seed 1``, ``--loss ce``, ``--rotation 20``, ...). When it
ends, the recipe's last two steps run as a user would type them:

1. ``fcn-tutorial threshold best.pt --split val --tta``: the decision threshold, chosen on validation;
2. ``fcn-tutorial evaluate best.pt --split test --tta --threshold T``: the score the recipe reports.

For comparison ``best.pt`` is also scored at full size with :func:`fcn_tutorial.evaluate.evaluate_checkpoint`
with and without flip test-time augmentation at the argmax (threshold 0.5), and, for a run with ``--ema``,
with the raw weights as well as their average. Every second counts:

* ``train_s``: the run, from reading the frames to its own ``val.json`` and ``test.json``;
* ``seconds`` of each extra scoring; ``recipe_s`` = ``train_s`` + the two steps above, the "30 minutes"
  of issue 10.

``--rescore --json RESULT.json`` skips the training: it scores the ``best.pt`` of an earlier result again (in its
``settings.out``, or ``--out``) and rewrites the JSON with today's scores, keeping its history and ``train_s``.

::

    FCN_TUTORIAL_DATA=../shared/data python benchmarks/quality.py --seed 0 --out runs/quality-seed0 \\
        --json book/results/cpu-30min/seed0.json

Time it on an idle machine: a second job on the same two cores slows an epoch tenfold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from fcn_tutorial import __version__, run
from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.config import add_config_arguments, config_from_args
from fcn_tutorial.evaluate import evaluate_checkpoint
from fcn_tutorial.threshold import sweep_checkpoint

# The README's CPU quality recipe: FCN-8s compact, width 0.25, batch norm, from scratch, 256 px frames
# cached in memory, 224 crops with flips and zoom, cross-entropy + Dice,
# Adam with a cosine schedule fitted to 30 minutes, a weight average; bf16 and channels-last by default
# where the CPU has them. Then the decision threshold is chosen on val, and test is scored with it.
RECIPE = (
    "--data kvasir-seg --model fcn8s --preset compact --width 0.25 --batch-norm --resize 256 --crop-size 224 "
    "--hflip 0.5 --vflip 0.5 --scale 0.8 1.2 --cache --batch-size 8 --loss ce+dice-per-image --ema 0.998 "
    "--ema-every 4 --optimizer adam --lr 1e-3 --schedule cosine --epochs 100 --time-limit 29 --patience 0 "
    "--val-every 2 --no-progress"
).split()

SCORES = ("pixel_accuracy", "jaccard", "mean_jaccard", "per_image_jaccard", "epoch")


def machine() -> dict:
    """What produced the timings: CPU model, cores, threads, library versions."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else model
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fcn_tutorial": __version__,
        "python": platform.python_version(),
    }


def timed_score(checkpoint: Path, split: str, tta: bool, threshold: float | None = None) -> dict:
    """Full-size scores of ``checkpoint`` on ``split`` (fp32, as ``fcn-tutorial evaluate``), with their seconds."""
    started = time.perf_counter()
    report = evaluate_checkpoint(checkpoint, split=split, tta=tta, threshold=threshold, progress=False)
    scores = {key: report[key] for key in SCORES if key in report}
    return scores | {"seconds": time.perf_counter() - started}


def timed_sweep(checkpoint: Path) -> dict:
    """``fcn-tutorial threshold --split val --tta``: the sweep, its best threshold and its seconds."""
    started = time.perf_counter()
    report = sweep_checkpoint(checkpoint, split="val", tta=True, progress=False)
    keep = ("thresholds", "jaccard", "per_image_jaccard", "best")
    return {key: report[key] for key in keep} | {"seconds": time.perf_counter() - started}


def score(best: Path, ema: bool) -> dict:
    """Every score of ``best.pt`` kept in the JSON; the recipe's own are ``threshold_sweep``, ``test_tta_threshold``."""
    sweep = timed_sweep(best)
    scores = {
        "threshold_sweep": sweep,
        "test_tta_threshold": timed_score(best, "test", tta=True, threshold=sweep["best"]),
        "val_tta_threshold": timed_score(best, "val", tta=True, threshold=sweep["best"]),
        "test_tta": timed_score(best, "test", tta=True),
        "test": json.loads((best.parent / "test.json").read_text()),
        "val_tta": timed_score(best, "val", tta=True),
        "val": json.loads((best.parent / "val.json").read_text()),
    }
    if ema:
        with tempfile.TemporaryDirectory() as folder:
            raw = raw_weights(best, Path(folder))
            scores["test_raw_weights"] = timed_score(raw, "test", tta=False)
            scores["test_raw_weights_tta"] = timed_score(raw, "test", tta=True)
    for name, row in scores.items():
        if "per_image_jaccard" in row and name != "threshold_sweep":
            print(f"{name}: polyp J {row['jaccard'][1]:.4f}, per image {row['per_image_jaccard'][1]:.4f}", flush=True)
    print(f"threshold chosen on val: {sweep['best']}")
    return scores


def recipe_seconds(train_s: float, scores: dict) -> float:
    """The recipe's time: training, choosing the threshold on val, scoring test with it."""
    return train_s + scores["threshold_sweep"]["seconds"] + scores["test_tta_threshold"]["seconds"]


def rescore(result_json: Path, out: str | None) -> dict:
    """Score an earlier result's ``best.pt`` again and rewrite its JSON (history and ``train_s`` kept)."""
    result = json.loads(result_json.read_text(encoding="utf-8"))
    best = Path(out or result["settings"]["out"]) / "best.pt"
    scores = score(best, bool(result["settings"].get("ema")))
    result.update(
        threshold=scores["threshold_sweep"]["best"],
        recipe_s=recipe_seconds(result["train_s"], scores),
        scores=scores,
        rescored_with=machine(),
    )
    result_json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def raw_weights(best: Path, folder: Path) -> Path:
    """A copy of ``best`` without its weight average, so that the raw weights of the same epoch are scored."""
    state = load_checkpoint(best, map_location="cpu")
    state.pop("ema", None)
    state.pop("ema_steps", None)
    path = folder / "raw.pt"
    torch.save(state, path)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser)
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--rescore", action="store_true", help="no training: score the best.pt of --json again")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(RECIPE + argv)
    if args.rescore:
        given_out = args.out if "--out" in argv else None
        return rescore(Path(args.json), given_out)
    config, _ = config_from_args(args)
    out = Path(config.out)

    started = time.perf_counter()
    history = run.train(config)
    train_s = time.perf_counter() - started
    scores = score(out / "best.pt", bool(config.ema))

    result = {
        "command": "python benchmarks/quality.py " + " ".join(argv),
        "recipe": " ".join(RECIPE),
        "settings": asdict(config),
        "machine": machine(),
        "epochs_done": len(history),
        "best_epoch": scores["test"].get("epoch"),
        "train_s": train_s,
        "threshold": scores["threshold_sweep"]["best"],
        "recipe_s": recipe_seconds(train_s, scores),
        "epoch_s_mean": sum(row["seconds"] for row in history) / len(history),
        "scores": scores,
        "history": history,  # history.csv's rows: chapter 6 draws the curves from them
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{len(history)} epochs, {train_s / 60:.1f} min training, {result['recipe_s'] / 60:.1f} min in all")
    return result


if __name__ == "__main__":
    main()
