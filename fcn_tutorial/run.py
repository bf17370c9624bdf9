"""A training run: :func:`train` turns a :class:`~fcn_tutorial.config.TrainConfig` into a run folder.

The loop follows torchvision's ``references/segmentation/train.py``: each epoch trains on all batches
(:func:`~fcn_tutorial.engine.train_one_epoch`) and then scores the validation split
(:func:`~fcn_tutorial.scoring.evaluate`); the best weights by validation Jaccard are kept, and training
stops early when the validation Jaccard has not improved for ``patience`` epochs, or before an epoch
that would end after ``time_limit``. A run folder holds::

    config.json   every option of the run
    history.csv   one row per epoch (losses, validation accuracy and Jaccard, val_size, learning rate, seconds)
    curves.png    the history drawn (redrawn at most once a minute, and at the end)
    train.log     the log lines, e.g. "EPOCH 3: Avg epoch training cost train ... took 12.3 s"
    best.pt       the weights with the best validation Jaccard so far (with --ema, also the weight average,
                  which is what validation scored and what load_model returns)
    last.pt       everything needed to resume: weights, weight average, optimiser, scheduler, scaler, RNG states
    val.json      the best epoch's validation scores at full size
    test.json     the best epoch's test scores at full size (the same as ``fcn-tutorial evaluate``)

With ``--resize``, the per-epoch validation scores the masks resized to the training size (faster; its
``val_size`` column and log lines say so) unless ``val_full_size`` is set; ``val.json`` and
``test.json`` are always at full size, in fp32, exactly as ``fcn-tutorial evaluate`` scores them.

``init_from`` starts the network from a trained coarser one (FCN-16s from FCN-32s, FCN-8s from FCN-16s,
as the paper trained them; :mod:`fcn_tutorial.models.staged`).

Nothing is lost on interruption: checkpoints are written atomically after every epoch, and the data
order and augmentation of epoch ``e`` derive from ``(seed, e)`` only, so ``resume=True`` continues a
killed run to the same weights, bit for bit, as a run that was never interrupted.

Run folders live under ``$FCN_TUTORIAL_RUNS`` (default ``runs/``, see :func:`runs_home`) unless ``out``
names another place, e.g. a mounted Google Drive on Colab.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from torchvision import tv_tensors
from tqdm.auto import tqdm

from . import engine
from .checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from .config import RUNS_ENV_VAR, TrainConfig, build_model_for, runs_home
from .distributed import DistributedContext, all_reduce_sum, barrier, cleanup, init_distributed
from .files import atomic_write_text, remove_stale_temporaries
from .history import plot_history, write_history
from .precision import precision_plan
from .progress import progress_bar
from .runlock import RunFolderLock
from .scoring import NonFiniteLogitsError, default_eval_batch_size, evaluate, score_dataset

__all__ = [
    "RUNS_ENV_VAR",
    "runs_home",
    "train",
    "build_datasets",
    "InMemoryDataset",
    "epoch_seed",
    "seed_everything",
    "configure_determinism",
    "RunLog",
    "epoch_line",
    "final_line",
    "monitored_value",
]

# --------------------------------------------------------------------------------------------
# Reproducibility


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of epoch ``epoch`` on process ``rank``: data order and augmentation depend on nothing else."""
    return (seed * 1_000_003 + epoch * 1_009 + rank) % 2**63


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(config: TrainConfig, device: torch.device) -> None:
    """Deterministic kernels (CPU default), so a seed fixes the result."""
    deterministic = config.deterministic if config.deterministic is not None else device.type == "cpu"
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


# --------------------------------------------------------------------------------------------
# Data sets of a run


class InMemoryDataset(Dataset):
    """Decode every pair once (through ``prepare``, e.g. a resize), keep them as uint8, augment on access.

    Large JPEGs take longer to decode and resize than a small network takes to train on them; this
    takes that work out of every epoch after the first. The resized frames are rounded to 8 bits, a
    difference of at most half a grey level from the frames that inference resizes in fp32.
    """

    def __init__(self, dataset: Dataset, transform: Callable | None = None, *, progress: bool | None = None):
        self.transform = transform
        self.images, self.masks = [], []
        for image, mask in progress_bar(dataset, progress=progress, desc="caching frames", leave=False):
            self.images.append((image.as_subclass(torch.Tensor) * 255).round().to(torch.uint8))
            self.masks.append(mask.as_subclass(torch.Tensor).to(torch.uint8))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        # tv_tensors tell the v2 transforms which tensor is the image and which the mask
        image = tv_tensors.Image(self.images[index].float() / 255)
        mask = tv_tensors.Mask(self.masks[index].long())
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


def validation_size(config: TrainConfig) -> int:
    """The shorter side of the masks that the per-epoch validation scores (0: full size, as drawn)."""
    return 0 if config.val_full_size or config.resize is None else config.resize


def build_datasets(config: TrainConfig, ctx: DistributedContext | None = None) -> dict[str, Dataset]:
    """The splits of a run, per ``config``.

    ``train``: augmented (and resized) training pairs; ``val``: the per-epoch validation pairs, at
    :func:`validation_size`; ``val_full`` and ``test`` (where the data set has a test split): untouched
    full-size pairs for the final scores. Normalisation is left to the scoring (``config.normalize``).
    """
    from .data import registry, transforms

    progress = config.progress if ctx is None or ctx.is_main else False
    augment = dict(
        crop_size=config.crop_size,
        hflip=config.hflip,
        vflip=config.vflip,
        transpose=config.transpose,
        rotation=config.rotation,
        scale=tuple(config.scale) if config.scale else None,
        color_jitter=config.color_jitter,
        normalize=config.normalize,
    )
    val_resize = validation_size(config) or None

    def load(split: str, count: int | None, transform: Callable | None) -> Dataset:
        dataset = registry.get_dataset(
            config.data,
            split,
            transform=transform,
            n_classes=config.n_classes,
            download=config.download and split == "train",
        )
        return _evenly_spread(dataset, count)

    def resized(resize: int | None) -> Callable | None:
        return transforms.eval_transforms(resize=resize) if resize else None

    datasets: dict[str, Dataset] = {}
    if config.cache:  # frames are decoded and resized once; only the rest runs at every access
        datasets["train"] = InMemoryDataset(
            load("train", config.n_train, resized(config.resize)),
            transforms.train_transforms(**augment),
            progress=progress,
        )
        datasets["val"] = InMemoryDataset(load("val", config.n_eval, resized(val_resize)), progress=progress)
    else:
        datasets["train"] = load("train", config.n_train, transforms.train_transforms(resize=config.resize, **augment))
        datasets["val"] = load("val", config.n_eval, resized(val_resize))
    datasets["val_full"] = load("val", config.n_eval, None)
    try:
        datasets["test"] = load("test", config.n_eval, None)
    except (FileNotFoundError, ValueError, KeyError):
        pass  # a data set without a test split: no final test scores
    return datasets


def _evenly_spread(dataset: Dataset, count: int | None) -> Dataset:
    """``count`` items spread evenly over ``dataset`` (all of them when ``count`` is None or too large)."""
    if count is None or count >= len(dataset):
        return dataset
    return Subset(dataset, torch.linspace(0, len(dataset) - 1, count).round().long().tolist())


# --------------------------------------------------------------------------------------------
# Logging


class RunLog:
    """Log lines to the terminal (above any progress bar) and to ``train.log``; silent off rank 0."""

    def __init__(self, path: Path | None, enabled: bool = True):
        self.path, self.enabled = path, enabled

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        tqdm.write(line, file=sys.stdout)
        self.to_file(line)

    def to_file(self, line: str) -> None:
        """Only into ``train.log`` (for a line that the command line prints itself)."""
        if self.enabled and self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line + "\n")


def epoch_line(row: dict, n_classes: int) -> str:
    """The original tutorial's log line for one epoch (and the validation size when it is not full size)."""
    if math.isnan(row["val_loss"]) and math.isnan(row["val_accuracy"]):  # skipped by --val-every (or NaN logits)
        return (
            f"EPOCH {row['epoch']}: Avg epoch training cost train {row['train_loss']:f}, not validated, "
            f"took {row['seconds']:f} s"
        )
    classes = ", ".join(f"jacc val class {c} {row[f'val_jaccard_{c}']:f}" for c in range(n_classes))
    line = (
        f"EPOCH {row['epoch']}: Avg epoch training cost train {row['train_loss']:f}, cost val {row['val_loss']:f}, "
        f"acc val {row['val_accuracy']:f}, {classes}, jacc val {row['val_jaccard_mean']:f} took {row['seconds']:f} s"
    )
    if row.get("val_size"):
        line += f" (val at {row['val_size']} px)"
    return line


def final_line(loss: float, scores, n_classes: int) -> str:
    """The original tutorial's closing line: the test scores of the best weights (a dict or SegmentationScores)."""
    scores = (
        scores
        if isinstance(scores, dict)
        else {"pixel_accuracy": scores.pixel_accuracy, "jaccard": scores.jaccard, "mean_jaccard": scores.mean_jaccard}
    )
    classes = ", ".join(f"jacc test class {c} {scores['jaccard'][c]:f}" for c in range(n_classes))
    return (
        f"FINAL MODEL: err test {loss:f}, acc test {scores['pixel_accuracy']:f}, {classes}, "
        f"jacc test {scores['mean_jaccard']:f}"
    )


def monitored_value(row: dict, monitor: str) -> float:
    """The validation figure that decides the best epoch: mean Jaccard, or one class's.

    ``-inf`` (never an improvement) when it, or the validation loss, is NaN or infinite.
    """
    key = "val_jaccard_mean" if monitor == "mean" else f"val_jaccard_{monitor}"
    if key not in row:
        raise ValueError(f"--monitor must be 'mean' or a class index, got {monitor!r}")
    value = row[key]
    if not math.isfinite(value) or not math.isfinite(row.get("val_loss", 0.0)):
        return -math.inf
    return value


def non_finite_parameters(model: nn.Module) -> list[str]:
    """The names of the parameters and buffers of ``model`` that hold a NaN or an infinity."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [name for name, tensor in tensors if tensor.is_floating_point() and not torch.isfinite(tensor).all()]


# --------------------------------------------------------------------------------------------
# The run


def train(config: TrainConfig, *, resume: bool = False) -> list[dict]:
    """Train per ``config`` into the run folder ``config.out``; return the history (one dict per epoch).

    With ``resume=True`` the run continues from ``config.out/last.pt``. Under ``torchrun`` every
    process calls this; only rank 0 writes.

    The run owns its folder while it trains (:class:`~fcn_tutorial.runlock.RunFolderLock`): a second
    run into it is refused. ``best.pt`` and ``last.pt`` only ever hold finite weights: when the weights
    or the loss become NaN or infinite the run stops with :class:`~fcn_tutorial.engine.NonFiniteLossError`,
    whose message says which epochs the checkpoints hold.
    """
    ctx = init_distributed(config.device)
    lock = RunFolderLock(config.out) if ctx.is_main else None
    try:
        if lock is not None:
            lock.acquire()
        return _train(config, ctx, resume)
    except KeyboardInterrupt:  # Ctrl-C, or Colab's stop button: say where the run stands and how to go on
        out = Path(config.out)
        if ctx.is_main and (out / "config.json").exists():
            saved = "last.pt holds the last finished epoch" if (out / "last.pt").exists() else "no epoch had finished"
            RunLog(out / "train.log")(f"interrupted; {saved}: continue with  fcn-tutorial train --resume {out}")
        raise
    finally:
        if lock is not None:
            lock.release()
        cleanup()


def _train(config: TrainConfig, ctx: DistributedContext, resume: bool) -> list[dict]:
    from .data.loaders import default_num_workers, make_eval_loader, make_train_loader

    run_started = time.perf_counter()  # the time limit counts everything: data preparation too
    out = Path(config.out)
    device = ctx.device
    last_path, best_path = out / "last.pt", out / "best.pt"
    checkpoint = None
    if resume and not last_path.exists() and (out / "config.json").exists():
        resume = False  # stopped before its first checkpoint: nothing to continue, so it starts again
        RunLog(out / "train.log", enabled=ctx.is_main)(
            f"{last_path} does not exist (no epoch had finished): starting {out} again"
        )
    if resume:
        checkpoint = load_checkpoint(last_path)
    elif last_path.exists():
        raise ValueError(
            f"run folder {out} already holds a run (last.pt); resume it with --resume {out} or pick another --out"
        )
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        # what a kill -9 during a write left behind; safe to remove: this process holds the folder's lock
        stale = remove_stale_temporaries(out)
        atomic_write_text(out / "config.json", config.to_json() + "\n")
    log = RunLog(out / "train.log", enabled=ctx.is_main)
    if ctx.is_main and stale:
        log(f"removed {len(stale)} temporary file(s) left by an interrupted write: {', '.join(p.name for p in stale)}")
    progress = config.progress if ctx.is_main else False

    configure_determinism(config, device)
    seed_everything(config.seed)
    amp_dtype, use_scaler = precision_plan(device.type, config.amp)

    datasets = build_datasets(config, ctx)
    for split in ("train", "val"):
        if len(datasets[split]) == 0:
            raise ValueError(f"the {split} split of {config.data} holds no frames: nothing to train or to validate on")
    # resuming: the weights come from last.pt, so ImageNet's are not needed (nor downloaded)
    model = build_model_for(config, pretrained_backbone=False if checkpoint is not None else None)
    if config.init_from and checkpoint is None:
        _init_from(model, config.init_from, log)
    model = model.to(device)
    if config.use_channels_last:
        model = model.to(memory_format=torch.channels_last)
    raw_model = model  # the module whose state_dict we save (no DDP or compile wrappers)
    ema = engine.build_ema(raw_model, config.ema, config.ema_every) if config.ema else None
    optimizer = engine.build_optimizer(raw_model, config)
    pin_memory = device.type == "cuda"
    num_workers = config.num_workers if config.num_workers is not None else default_num_workers(device)
    train_batches = make_train_loader(
        datasets["train"],
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=num_workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
        pin_memory=pin_memory,
    )
    scheduler = engine.build_scheduler(optimizer, config, steps_per_epoch=len(train_batches))
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    class_weights = (
        torch.tensor(config.class_weights, dtype=torch.float32, device=device) if config.class_weights else None
    )
    val_size = validation_size(config)

    history: list[dict] = []
    start_epoch, best, best_epoch, elapsed = 1, -math.inf, 0, 0.0
    saved_epoch = 0  # the epoch whose weights last.pt holds
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
        if non_finite_parameters(raw_model):
            raise ValueError(
                f"{last_path} holds NaN or infinite weights (written by a version that saved diverged runs); "
                f"it cannot be resumed: start a new run"
            )
        saved_epoch = checkpoint["epoch"]
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        if ema is not None:
            ema.module.load_state_dict(checkpoint["ema"])
            ema.n_averaged.fill_(checkpoint["ema_steps"])
        restore_rng_state(checkpoint["rng"])
        history = [_with_val_size(row, val_size) for row in checkpoint["history"]]
        start_epoch = checkpoint["epoch"] + 1
        best, best_epoch, elapsed = checkpoint["best"], checkpoint["best_epoch"], checkpoint["elapsed"]
        run_started -= elapsed  # the earlier sessions' time counts towards the limit
        if ctx.is_main:
            write_history(history, out / "history.csv")  # drop any row written after last.pt
        log(f"resumed {out} after epoch {checkpoint['epoch']} (best {best:f} at epoch {best_epoch})")
    else:
        n_params = sum(p.numel() for p in raw_model.parameters())
        log(
            f"training {config.model} ({config.preset}, width {config.width}, {n_params:,} parameters) on "
            f"{config.data}: {len(datasets['train'])} training / {len(datasets['val'])} validation images, {device}; "
            f"run folder {out}"
        )
    if val_size:
        when = "every epoch" if config.val_every == 1 else f"every {config.val_every} epochs and at the last"
        log(
            f"validation is scored at the training size ({val_size} px) {when}; the best epoch is scored at "
            f"full size at the end (val.json, test.json)"
        )

    # Training goes through DDP (gradients averaged over processes); evaluation runs the plain module,
    # since each process scores a different number of images.
    if ctx.is_distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    eval_model = ema.module if ema is not None else raw_model  # validation scores the average when there is one
    if config.compile:
        model, eval_model = torch.compile(model), torch.compile(eval_model)
    eval_batch_size = config.eval_batch_size or default_eval_batch_size(device)
    val_loader = make_eval_loader(
        datasets["val"],
        batch_size=eval_batch_size,
        num_workers=num_workers,
        persistent_workers=True,  # not a new worker process for every epoch's validation
        rank=ctx.rank,
        world_size=ctx.world_size,
        pin_memory=pin_memory,
    )
    val_input_size = config.resize if not val_size else None  # full-size frames go to the network resized

    stop_reason, curves_drawn, drawing_seconds = "reached the last epoch", time.perf_counter(), 0.0
    epochs_bar = progress_bar(
        range(start_epoch, config.epochs + 1),
        progress=progress,
        desc="epochs",
        initial=start_epoch - 1,
        total=config.epochs,
        unit="epoch",
    )
    for epoch in epochs_bar:
        if best_epoch and config.patience is not None and epoch - best_epoch > config.patience:
            stop_reason = f"no improvement for {config.patience} epochs"
            break
        if config.time_limit is not None and history:
            mean_epoch = sum(row["seconds"] for row in history) / len(history)
            over = time.perf_counter() - run_started + mean_epoch > config.time_limit * 60
            if all_reduce_sum(torch.tensor(float(over), device=device)).item():  # every process stops together
                stop_reason = f"time limit of {config.time_limit:g} min"
                break
        started = time.perf_counter()
        seed_everything(epoch_seed(config.seed, epoch, ctx.rank))  # dropout and in-process augmentation
        lr = optimizer.param_groups[0]["lr"]
        train_batches.sampler.set_epoch(epoch)
        try:
            train_loss = engine.train_one_epoch(
                model,
                train_batches,
                optimizer,
                device,
                scheduler=scheduler,
                scaler=scaler,
                amp_dtype=amp_dtype,
                class_weights=class_weights,
                channels_last=config.use_channels_last,
                loss=config.loss,
                ema=ema,
                epoch=epoch,
                progress=progress,
            )
            # the loss was finite, but the last steps may not have been: nothing non-finite goes into last.pt
            diverged = non_finite_parameters(raw_model) + _non_finite_optimizer_state(optimizer)
            if ema is not None:
                diverged += [f"EMA {name}" for name in non_finite_parameters(ema)]
            if diverged:
                raise engine.NonFiniteLossError(
                    f"the weights became NaN or infinite during epoch {epoch} ({len(diverged)} tensors, e.g. "
                    f"{diverged[0]}); lower --lr, or try --amp none"
                )
        except engine.NonFiniteLossError as error:
            message = f"stopped: {error}; " + _saved_epochs(out, saved_epoch, best_epoch)
            log.to_file(message)
            raise engine.NonFiniteLossError(message) from None
        # scores stay missing (NaN, never the best) on the epochs that --val-every skips
        val_loss, accuracy, jaccard, mean_jaccard = math.nan, math.nan, [math.nan] * config.n_classes, math.nan
        if epoch % config.val_every == 0 or epoch == config.epochs:
            try:
                val_loss, scores = evaluate(
                    eval_model,
                    val_loader,
                    config.n_classes,
                    device,
                    input_size=val_input_size,
                    normalize=config.normalize,
                    amp_dtype=amp_dtype,
                    channels_last=config.use_channels_last,
                    progress=progress,
                )
                accuracy, jaccard, mean_jaccard = scores.pixel_accuracy, scores.jaccard, scores.mean_jaccard
            except NonFiniteLogitsError as error:  # finite weights, NaN scores: recorded, never an improvement
                log(f"epoch {epoch}: {error}; this epoch cannot be the best")
        seconds = time.perf_counter() - started
        elapsed = time.perf_counter() - run_started
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": float(accuracy),
        }
        row.update({f"val_jaccard_{c}": float(j) for c, j in enumerate(jaccard)})
        row.update({"val_jaccard_mean": float(mean_jaccard), "val_size": val_size, "seconds": seconds})
        history.append(row)

        improved = monitored_value(row, config.monitor) > best
        if improved:
            best, best_epoch = monitored_value(row, config.monitor), epoch
        if ctx.is_main:
            ema_state = {} if ema is None else {"ema": ema.module.state_dict(), "ema_steps": int(ema.n_averaged)}
            if improved:
                save_checkpoint(
                    {
                        "model": raw_model.state_dict(),
                        **ema_state,
                        "config": asdict(config),
                        "epoch": epoch,
                        "scores": row,
                    },
                    best_path,
                )
            save_checkpoint(
                {
                    "model": raw_model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    **ema_state,
                    "epoch": epoch,
                    "best": best,
                    "best_epoch": best_epoch,
                    "elapsed": elapsed,
                    "config": asdict(config),
                    "history": history,
                    "rng": rng_state(),
                },
                last_path,
            )
            saved_epoch = epoch
            write_history(history, out / "history.csv")
            # drawing costs a second or two: at most once a minute, and at most 2 % of the loop's time
            if time.perf_counter() - curves_drawn > max(60.0, 50 * drawing_seconds):
                drawing_started = time.perf_counter()
                plot_history(history, out / "curves.png", title=f"{config.model} on {config.data}")
                curves_drawn = time.perf_counter()
                drawing_seconds = curves_drawn - drawing_started
        log(epoch_line(row, config.n_classes))
        epochs_bar.set_postfix(jaccard=f"{row['val_jaccard_mean']:.4f}", best=f"{best:.4f}", refresh=False)
        barrier()
    epochs_bar.close()
    if ctx.is_main and history:
        plot_history(history, out / "curves.png", title=f"{config.model} on {config.data}")
    log(
        f"stopped: {stop_reason}; best validation {config.monitor} Jaccard {best:f} at epoch {best_epoch}"
        + (f" (scored at {val_size} px)" if val_size else "")
    )
    if best_path.exists():
        _score_best_epoch(config, ctx, raw_model, datasets, best_path, best_epoch, log, progress)
    return history


def _non_finite_optimizer_state(optimizer: torch.optim.Optimizer) -> list[str]:
    """The optimiser's state tensors (e.g. Adam's moments) that hold a NaN or an infinity, named for a message."""
    return [
        f"optimizer state {key}"
        for state in optimizer.state.values()
        for key, tensor in state.items()
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]


def _saved_epochs(out: Path, last_epoch: int, best_epoch: int) -> str:
    """Which epochs the run folder's checkpoints hold, for the message of a run that stopped."""
    if not last_epoch:
        return f"no checkpoint was written to {out} (no epoch finished with finite weights)"
    return (
        f"{out / 'last.pt'} holds epoch {last_epoch} and {out / 'best.pt'} epoch {best_epoch} (finite weights)"
        if best_epoch
        else f"{out / 'last.pt'} holds epoch {last_epoch} (finite weights); no epoch scored finitely, so there is "
        f"no best.pt"
    )


def _init_from(model: nn.Module, checkpoint: str, log: RunLog) -> None:
    """Start ``model`` from the trained coarser net in ``checkpoint`` (see :mod:`fcn_tutorial.models.staged`)."""
    from .evaluate import load_model
    from .models.staged import init_from_coarser

    coarser, coarser_config = load_model(checkpoint, "cpu")
    try:
        init_from_coarser(model, coarser)
    except ValueError as error:
        raise ValueError(f"--init-from {checkpoint}: {error}") from None
    log(f"initialised from {checkpoint} (a trained {coarser_config.model}); its new score layers start at zero")


def _with_val_size(row: dict, val_size: int) -> dict:
    """A history row of a run started before ``val_size`` was recorded, with it (the same run, the same size)."""
    if "val_size" in row:
        return row
    row = dict(row)
    seconds = row.pop("seconds")
    return {**row, "val_size": val_size, "seconds": seconds}


def _score_best_epoch(
    config: TrainConfig,
    ctx: DistributedContext,
    model: nn.Module,
    datasets: dict,
    best_path: Path,
    best_epoch: int,
    log: RunLog,
    progress: bool | None,
) -> None:
    """Score ``best.pt`` at full size, in fp32, as ``fcn-tutorial evaluate`` does: ``val.json`` and ``test.json``."""
    from .data.loaders import default_num_workers
    from .evaluate import checkpoint_report

    state = load_checkpoint(best_path, map_location=ctx.device)
    model = model.to(memory_format=torch.contiguous_format)  # as evaluate's freshly built model, to the last bit
    model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])  # what validation chose
    splits = ["val"] + (["test"] if config.test and "test" in datasets else [])
    if "test" in splits and len(datasets["test"]) == 0:
        splits.remove("test")
        log(f"the test split of {config.data} holds no frames: no test scores (test.json)")
    for split in splits:
        dataset = datasets["val_full" if split == "val" else split]
        try:
            scores = score_dataset(
                model,
                dataset,
                config.n_classes,
                ctx.device,
                input_size=config.resize,
                normalize=config.normalize,
                batch_size=config.eval_batch_size or default_eval_batch_size(ctx.device),
                num_workers=config.num_workers if config.num_workers is not None else default_num_workers(ctx.device),
                rank=ctx.rank,
                world_size=ctx.world_size,
                progress=progress,
                desc=f"{split} at full size",
            )
        except NonFiniteLogitsError:
            raise
        except (ValueError, OSError) as error:  # e.g. a truncated test frame, read for the first time here
            message = (
                f"scoring the {split} split at full size stopped: {error}; the training is saved ({best_path}): "
                f"fix the file, then score it with  fcn-tutorial evaluate {best_path} --split {split}"
            )
            log.to_file(message)
            raise ValueError(message) from None
        report = checkpoint_report(best_path, config.data, split, len(dataset), config.resize, scores)
        if split == "val":
            classes = ", ".join(f"class {c} {j:f}" for c, j in enumerate(scores["jaccard"]))
            log(
                f"best epoch {best_epoch} at full size: validation Jaccard {classes}, mean {scores['mean_jaccard']:f}; "
                f"per-image mean {scores['per_image_mean_jaccard']:f}"
            )
        else:
            log(final_line(scores["loss"], scores, config.n_classes))
        if ctx.is_main:
            atomic_write_text(
                Path(config.out) / f"{split}.json", json.dumps({**report, "epoch": best_epoch}, indent=2) + "\n"
            )
