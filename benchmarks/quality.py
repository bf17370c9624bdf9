"""Quality per CPU-minute: train the README's CPU recipe, score it on the test split, write one JSON (issue 10).

The run is the package's own ``fcn-tutorial train`` (:func:`fcn_tutorial.run.train`) with the recipe
below; extra options go to it unchanged (``--seed 1``, ``--loss ce``, ``--rotation 20``, ...). When it
ends, ``best.pt`` is scored at full size on the test and validation splits with
:func:`fcn_tutorial.evaluate.evaluate_checkpoint`: with and without flip test-time augmentation, and,
for a run with ``--ema``, with the raw weights as well as their average. Every second counts:

* ``train_s``: the run, from reading the frames to its own ``val.json`` and ``test.json``;
* ``scoring_s``: each extra scoring; ``recipe_s`` = ``train_s`` + the scoring the recipe reports
  (test with TTA), the "30 minutes" of issue 10.

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

# The README's CPU quality recipe: FCN-8s compact, width 0.25, batch norm, from scratch, 256 px frames
# cached in memory, 224 crops with flips and zoom, cross-entropy (polyp pixels weighted twice) + Dice,
# Adam with a cosine schedule fitted to 30 minutes, a weight average; bf16 and channels-last by default
# where the CPU has them.
RECIPE = (
    "--data kvasir-seg --model fcn8s --preset compact --width 0.25 --batch-norm --resize 256 --crop-size 224 "
    "--hflip 0.5 --vflip 0.5 --scale 0.8 1.2 --cache --batch-size 8 --loss ce+dice --class-weights 1 2 --ema 0.998 "
    "--optimizer adam --lr 1e-3 --schedule cosine --epochs 100 --time-limit 29 --patience 0 --no-progress"
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


def timed_score(checkpoint: Path, split: str, tta: bool) -> dict:
    """Full-size scores of ``checkpoint`` on ``split`` (fp32, as ``fcn-tutorial evaluate``), with their seconds."""
    started = time.perf_counter()
    report = evaluate_checkpoint(checkpoint, split=split, tta=tta, progress=False)
    scores = {key: report[key] for key in SCORES if key in report}
    return scores | {"seconds": time.perf_counter() - started}


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
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(RECIPE + argv)
    config, _ = config_from_args(args)
    out = Path(config.out)

    started = time.perf_counter()
    history = run.train(config)
    train_s = time.perf_counter() - started
    best = out / "best.pt"

    scores = {
        "test_tta": timed_score(best, "test", tta=True),
        "test": json.loads((out / "test.json").read_text()),
        "val_tta": timed_score(best, "val", tta=True),
        "val": json.loads((out / "val.json").read_text()),
    }
    if config.ema:
        with tempfile.TemporaryDirectory() as folder:
            raw = raw_weights(best, Path(folder))
            scores["test_raw_weights"] = timed_score(raw, "test", tta=False)
            scores["test_raw_weights_tta"] = timed_score(raw, "test", tta=True)
    for name, row in scores.items():
        print(f"{name}: polyp J {row['jaccard'][1]:.4f}, per image {row['per_image_jaccard'][1]:.4f}", flush=True)

    result = {
        "command": "python benchmarks/quality.py " + " ".join(argv),
        "recipe": " ".join(RECIPE),
        "settings": asdict(config),
        "machine": machine(),
        "epochs_done": len(history),
        "best_epoch": scores["test"].get("epoch"),
        "train_s": train_s,
        "recipe_s": train_s + scores["test_tta"]["seconds"],
        "epoch_s_mean": sum(row["seconds"] for row in history) / len(history),
        "scores": scores,
        "history": history,  # history.csv's rows: chapter 6 draws the curves from them
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{len(history)} epochs, {train_s / 60:.1f} min training, {result['recipe_s'] / 60:.1f} min with TTA test")
    return result


if __name__ == "__main__":
    main()
