"""Loop efficiency: a real training run's throughput against the bare training step of the same network.

A real run (:func:`fcn_tutorial.run.train`: cached frames, augmentation, the DataLoader and its worker,
the weight average, the validation, checkpoints, history and log) is timed epoch by epoch, from the start
of one epoch's training to the start of the next (less the bare steps timed in between, below), so every
second of the loop counts. The bare step is the same network, batch, crop size, precision and memory
format, trained on random tensors that are already in memory: forward, loss, backward, the optimiser's
step, nothing else. It is timed in the same process just before the run, between its epochs and just
after it, and the timings are pooled, so the ratio

    loop efficiency = (training images per second of the whole loop) / (images per second of the bare step)

is measured side by side: a machine shared with other work, or one that gets faster or slower during the
run, moves both figures alike. Between the epochs it runs ``--steps-between`` steps (3) before each one,
left out of the loop's time, with the run's random state saved and restored around them; the bare step's
figure is the median of all its timed steps. The run has 10 epochs; the first is left out (it reads the
frames into the cache, starts any worker and warms the allocator), and so is the last (it always
validates, and draws the final curves); the loop's figure is the mean of epochs 2 to 9. With the recipe's
``--val-every 2`` they validate 4 of 8, the recipe's one in two. Each epoch is split into where its time
went: waiting for batches, training compute (with the weight average), validation, and the rest
(checkpoints, history, log, curves)::

    FCN_TUTORIAL_DATA=../shared/data .venv/bin/python benchmarks/train_loop.py             # the README's CPU recipe
    FCN_TUTORIAL_DATA=../shared/data .venv/bin/python benchmarks/train_loop.py --num-workers 0 --eval-batch-size 1
    ... --profile 10    # also: torch.profiler over 10 steps of the bare step, the top operators

Options not listed here go to ``fcn-tutorial train`` unchanged (e.g. ``--amp none --no-channels-last``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from fcn_tutorial import engine, run
from fcn_tutorial.config import add_config_arguments, build_model_for, config_from_args
from fcn_tutorial.data import loaders
from fcn_tutorial.precision import precision_plan

sys.path.insert(0, str(Path(__file__).parent))
from quality import RECIPE as QUALITY_RECIPE  # noqa: E402

# The README's CPU quality recipe (benchmarks/quality.py), cut to --epochs, without the final test scoring.
RECIPE = [*QUALITY_RECIPE, "--no-test"]


class TimedBatches:
    """A DataLoader that adds up the seconds its consumer waits for each batch."""

    def __init__(self, loader):
        self.loader, self.waited = loader, 0.0

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            started = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.waited += time.perf_counter() - started
            yield batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):  # sampler, dataset, ...
        return getattr(self.loader, name)


def timed_run(config, between=None) -> tuple[list[dict], int]:
    """Train per ``config``; return, per epoch, its loop seconds and where they went, and the training frames.

    ``between()``, if given, runs before each epoch; its time is not counted in any epoch.
    """
    marks: list[dict] = []
    loader_box: list[TimedBatches] = []
    real_train, real_evaluate, real_score, real_make = (
        engine.train_one_epoch,
        run.evaluate,
        run._score_best_epoch,
        loaders.make_train_loader,
    )

    def make_train_loader(*args, **kwargs):
        loader_box.append(TimedBatches(real_make(*args, **kwargs)))
        return loader_box[-1]

    def train_one_epoch(*args, **kwargs):
        if marks:
            marks[-1]["end"] = time.perf_counter()
        if between is not None:
            between()
        # validation stays 0 on the epochs that --val-every skips
        marks.append({"start": time.perf_counter(), "waited_before": loader_box[-1].waited, "validation": 0.0})
        result = real_train(*args, **kwargs)
        marks[-1].update(train_end=time.perf_counter(), waited=loader_box[-1].waited - marks[-1]["waited_before"])
        return result

    def evaluate(*args, **kwargs):
        started = time.perf_counter()
        result = real_evaluate(*args, **kwargs)
        marks[-1]["validation"] = time.perf_counter() - started
        return result

    def score_best_epoch(*args, **kwargs):
        marks[-1]["end"] = time.perf_counter()
        return real_score(*args, **kwargs)

    engine.train_one_epoch, run.evaluate, run._score_best_epoch = train_one_epoch, evaluate, score_best_epoch
    loaders.make_train_loader = make_train_loader
    try:
        run.train(config)
    finally:
        engine.train_one_epoch, run.evaluate, run._score_best_epoch = real_train, real_evaluate, real_score
        loaders.make_train_loader = real_make
    epochs = []
    for mark in marks:
        if "end" not in mark:  # the last epoch of a run with no best epoch to score: its end was not seen
            continue
        loop = mark["end"] - mark["start"]
        train = mark["train_end"] - mark["start"]
        epochs.append(
            {
                "loop_s": loop,
                "waiting_s": mark["waited"],
                "compute_s": train - mark["waited"],
                "validation_s": mark["validation"],
                "rest_s": loop - train - mark["validation"],
            }
        )
    return epochs, len(loader_box[-1].dataset)


class BareStep:
    """``config``'s network, batch, precision and memory format, trained on random tensors already in memory."""

    def __init__(self, config):
        self.amp_dtype, _ = precision_plan("cpu", config.amp)
        with torch.random.fork_rng(devices=[]):  # the run's random stream is left as it was
            torch.manual_seed(0)
            self.model = build_model_for(config).train()
            size = config.crop_size or config.resize or 224
            self.images = torch.rand(config.batch_size, 3, size, size)
            self.masks = (torch.rand(config.batch_size, size, size) > 0.8).long()
        if config.use_channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.optimizer = engine.build_optimizer(self.model, config)
        self.loss = config.loss

    def time(self, steps: int) -> list[float]:
        """Seconds of each of ``steps`` steps: forward, loss, backward, the optimiser's step."""
        times = []
        with torch.random.fork_rng(devices=[]):  # dropout draws from the run's stream otherwise
            for _ in range(steps):
                started = time.perf_counter()
                with torch.autocast("cpu", dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                    logits = self.model(self.images)
                loss = engine.segmentation_loss(logits, self.masks, loss=self.loss)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                times.append(time.perf_counter() - started)
        return times


def bare_steps(config, steps: int) -> list[float]:
    """Seconds of each of ``steps`` bare training steps (after one warm-up step) of ``config``'s network."""
    bare = BareStep(config)
    return bare.time(steps + 1)[1:]


def profile_bare_step(config, steps: int) -> str:
    """torch.profiler's table of the operators that take the most CPU time in ``steps`` bare steps."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        bare_steps(config, steps)
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser)
    parser.add_argument("--steps", type=int, default=12, help="bare steps timed before and after the run (each)")
    parser.add_argument("--steps-between", type=int, default=3, help="bare steps timed before each epoch")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS", help="also profile this many bare steps")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(RECIPE + ["--epochs", "10"] + (sys.argv[1:] if argv is None else argv))
    work = tempfile.TemporaryDirectory(prefix="train-loop-")
    args.out = str(Path(work.name) / "run")
    config, _ = config_from_args(args)

    bare_step = BareStep(config)
    bare_step.time(1)  # warm-up
    before, between = bare_step.time(args.steps), []
    epochs, n_train = timed_run(config, lambda: between.extend(bare_step.time(args.steps_between)))
    after = bare_step.time(args.steps)
    step_s = statistics.median(before + between + after)
    bare = config.batch_size / step_s
    steady = epochs[1:-1] or epochs  # not the first epoch (cache, warm-up) nor the last (always validated)
    loop_s = statistics.mean(e["loop_s"] for e in steady)  # the mean: with --val-every, epochs alternate
    loop = n_train / loop_s
    result = {
        "config": {
            k: getattr(config, k)
            for k in (
                "model",
                "preset",
                "width",
                "batch_norm",
                "resize",
                "crop_size",
                "batch_size",
                "eval_batch_size",
                "num_workers",
                "amp",
                "channels_last",
                "cache",
                "loss",
                "ema",
                "ema_every",
            )
        },
        "threads": torch.get_num_threads(),
        "training_frames": n_train,
        "bare_step_images_per_s": bare,
        "bare_step_s_before_after": [statistics.median(before), statistics.median(after)],
        "bare_step_s_between_epochs": statistics.median(between) if between else None,
        "loop_images_per_s": loop,
        "loop_efficiency": loop / bare,
        "epochs": epochs,
    }
    print(
        f"{config.model} {config.preset} width {config.width:g}, batch {config.batch_size}, amp {config.amp}, "
        f"channels-last {config.use_channels_last}, workers {config.num_workers}, "
        f"eval batch {config.eval_batch_size}; "
        f"{n_train} training frames, {torch.get_num_threads()} threads"
    )
    between_text = f"between epochs {statistics.median(between):.3f} s, " if between else ""
    print(
        f"bare step: {bare:.2f} img/s (median step {step_s:.3f} s; before {statistics.median(before):.3f} s, "
        f"{between_text}after {statistics.median(after):.3f} s)"
    )
    print(f"whole loop: {loop:.2f} img/s (mean epoch {loop_s:.2f} s over epochs 2..{len(epochs) - 1})")
    print(f"loop efficiency: {loop / bare:.2f}x the bare step")
    print(
        "per epoch (s): "
        + " | ".join(
            f"{e['loop_s']:.1f} = wait {e['waiting_s']:.1f} + compute {e['compute_s']:.1f} "
            f"+ val {e['validation_s']:.1f}"
            f" + rest {e['rest_s']:.1f}"
            for e in epochs
        )
    )
    if args.profile:
        print(profile_bare_step(config, args.profile))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    work.cleanup()
    return result


if __name__ == "__main__":
    main()
