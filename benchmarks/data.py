"""Is the data pipeline fast enough to keep FCN-8s busy? Images per second, side by side.

The pipeline is the training one: decode a real Kvasir-SEG frame (JPEG image and JPEG mask),
augment it as the 2017 tutorial did (random 224 x 224 crop, horizontal flip), and collate batches
of 10, with 0 and with 2 worker processes. Next to it, in the same run, the training throughput
of FCN-8s (forward, backward and Adam step on batches of 10 crops, pixel-wise cross-entropy with
void ignored) on the same machine: the ``compact`` preset at width 0.25, and with ``--paper`` the
``paper`` preset at width 1.0. Each measurement is repeated and the median kept.

    .venv/bin/python benchmarks/data.py [--root ../shared/data/kvasir-seg] [--batches 15] [--steps 5] [--paper]

Target: pipeline images/s >= FCN-8s training images/s (ratio >= 1), so the network, not the data,
sets the pace. On a machine with few cores the workers and the network share them in a real run;
the ratio says how much headroom the pipeline has.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fcn_tutorial.data import VOID, KvasirSEG, make_loaders
from fcn_tutorial.data.transforms import original_preset

DEFAULT_ROOT = Path(
    os.environ.get("FCN_TUTORIAL_TEST_KVASIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "kvasir-seg")
)
TARGET_RATIO = 1.0


def pipeline_throughput(dataset, workers: int, batches: int, batch_size: int) -> float:
    """Images per second through decode, augmentation and collation (first batch, with worker start-up, excluded)."""
    loader = make_loaders(dataset, dataset, batch_size=batch_size, num_workers=workers, seed=0).train
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    count = sum(images.shape[0] for images, _ in itertools.islice(iterator, batches))
    return count / (time.perf_counter() - start)


def training_throughput(model, images: torch.Tensor, masks: torch.Tensor, steps: int) -> float:
    """Images per second of training steps (forward, loss, backward, Adam) on one batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), masks, ignore_index=VOID)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * images.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the Kvasir-SEG folder (images/, masks/)")
    parser.add_argument("--batches", type=int, default=15, help="batches timed per pipeline measurement")
    parser.add_argument("--steps", type=int, default=5, help="training steps timed per model measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--paper", action="store_true", help="also time the paper preset at width 1.0 (slow on a CPU)")
    args = parser.parse_args()

    preset = original_preset()
    dataset = KvasirSEG(args.root, "train", transform=preset.train_transform, split_dir=False)
    print(
        f"Kvasir-SEG train split: {len(dataset)} frames in {args.root}; batches of {args.batch_size} "
        f"224x224 crops; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; median of {args.repeats}"
    )

    try:
        from fcn_tutorial.models import build_model
    except ImportError as error:  # the models package is written separately
        build_model = None
        print(f"(no model timing: {error})")
    models = {}
    if build_model is not None:
        models["FCN-8s compact width 0.25"] = build_model("fcn8s", 2, preset="compact", width=0.25)
        if args.paper:
            models["FCN-8s paper width 1.0"] = build_model("fcn8s", 2, preset="paper", width=1.0)
    images, masks = next(iter(make_loaders(dataset, dataset, batch_size=args.batch_size, num_workers=0).train))

    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # data and models alternate, so that both see the same machine load
        for workers in (0, 2):
            results.setdefault(f"pipeline, {workers} workers", []).append(
                pipeline_throughput(dataset, workers, args.batches, args.batch_size)
            )
        for name, model in models.items():
            steps = args.steps if "compact" in name else max(1, args.steps // 5)
            results.setdefault(f"training {name}", []).append(training_throughput(model, images, masks, steps))

    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, value in medians.items():
        print(f"{name:38s} {value:8.1f} images/s")
    met = True
    for model_name in models:
        training = medians[f"training {model_name}"]
        for workers in (0, 2):
            ratio = medians[f"pipeline, {workers} workers"] / training
            print(f"pipeline ({workers} workers) / training {model_name}: ratio {ratio:.2f}")
            met = met and (workers == 0 or ratio >= TARGET_RATIO)
    if models:
        print(f"target: pipeline with 2 workers >= {TARGET_RATIO}x training throughput: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
