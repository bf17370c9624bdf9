"""Training an FCN: :class:`TrainConfig`, :func:`train`, :func:`train_one_epoch` and :func:`evaluate`.

The loop follows torchvision's ``references/segmentation/train.py``: every option sits in one
dataclass (saved as ``config.json``), each epoch trains on all batches and then scores the
validation split, the best weights by validation Jaccard are kept, and training stops early when
the validation Jaccard has not improved for ``patience`` epochs. A run folder holds::

    config.json   every option of the run
    history.csv   one row per epoch (losses, validation accuracy and Jaccard, learning rate, seconds)
    curves.png    the history drawn (redrawn at most once a minute, and at the end)
    train.log     the log lines, e.g. "EPOCH 3: Avg epoch training cost train ... took 12.3 s"
    best.pt       the weights with the best validation Jaccard so far
    last.pt       everything needed to resume: weights, optimiser, scheduler, scaler, RNG states

Nothing is lost on interruption: checkpoints are written atomically after every epoch, and the data
order and augmentation of epoch ``e`` derive from ``(seed, e)`` only, so ``resume=True`` continues a
killed run to the same weights, bit for bit, as a run that was never interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torchvision import tv_tensors
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from .distributed import DistributedContext, ShardSampler, all_reduce_sum, barrier, cleanup, init_distributed
from .history import plot_history, write_history

__all__ = [
    "TrainConfig",
    "PRESET_RECIPES",
    "NonFiniteLossError",
    "train",
    "train_one_epoch",
    "evaluate",
    "segmentation_loss",
    "precision_plan",
    "build_optimizer",
    "build_scheduler",
    "epoch_seed",
    "register",
]

VOID = 255  # the void label (fcn_tutorial.data.VOID): ignored by the loss and the metrics


@dataclass
class TrainConfig:
    """Every option of a training run. The defaults are the 2017 tutorial's recipe (see ``PRESET_RECIPES``)."""

    # what to train on and where to write
    data: str = "synthetic"  # a folder in any supported layout, or "kvasir-seg", "polyps912", "synthetic"
    out: str = "runs/fcn8s"
    download: bool = False  # fetch a named data set if it is missing
    # the network
    model: str = "fcn8s"  # fcn32s | fcn16s | fcn8s
    preset: str = "paper"  # paper | original | compact
    width: float = 1.0  # channel multiplier of the backbone
    pretrained_backbone: bool = False
    batch_norm: bool = False  # a batch norm after each VGG convolution (vgg16_bn): faster from scratch
    n_classes: int = 2
    # data and augmentation
    resize: int | None = None  # resize every frame first (None: keep the full size)
    crop_size: int | None = 224  # random training crops (None: whole frames)
    hflip: float = 0.5  # probability of a horizontal flip
    vflip: float = 0.0
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    scale: list[float] | None = None  # random rescale range, e.g. [0.75, 1.25]
    color_jitter: float = 0.0  # brightness/contrast/saturation strength
    normalize: bool = False  # ImageNet mean/std (use with a pretrained backbone)
    cache: bool = False  # decode (and resize) every frame once, keep them in memory
    n_train: int | None = None  # use only this many training frames, evenly spread (None: all)
    n_eval: int | None = None  # and this many validation/test frames
    batch_size: int = 10
    eval_batch_size: int = 1
    num_workers: int = 0
    # optimisation
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-4
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # on weights only, never on biases (as in the original)
    schedule: str = "constant"  # constant | cosine | onecycle
    epochs: int = 750
    patience: int | None = 100  # epochs without improvement before stopping (None: never stop early)
    monitor: str = "mean"  # "mean" Jaccard, or one class's index, e.g. "1"
    class_weights: list[float] | None = None
    time_limit: float | None = None  # minutes of wall time (data preparation included); no epoch starts that would end after it
    # precision, speed and reproducibility
    device: str = "auto"  # auto | cpu | cuda | mps
    amp: str = "none"  # none | bf16 | fp16 | auto
    channels_last: bool = False
    compile: bool = False
    deterministic: bool | None = None  # None: on for the CPU, off for GPUs (faster kernels)
    seed: int = 0
    progress: bool | None = None  # tqdm bars; None: only on a terminal
    test: bool = True  # score the best weights on the test split at the end

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def for_preset(cls, preset: str, **options) -> "TrainConfig":
        """A config with the recipe of ``preset`` (``PRESET_RECIPES``), then ``options`` on top."""
        return cls.from_dict({"preset": preset, **PRESET_RECIPES.get(preset, {}), **options})


# Training recipes that go with a model preset; options given explicitly win.
PRESET_RECIPES: dict[str, dict[str, Any]] = {
    # The 2017 tutorial end to end: Adam 1e-4, batches 10/1/1, 224 crops mirrored every time,
    # [0, 1] inputs, early stopping with patience 100 on the validation mean Jaccard, <= 750 epochs.
    "original": dict(
        optimizer="adam", lr=1e-4, weight_decay=0.0, schedule="constant", batch_size=10, eval_batch_size=1,
        crop_size=224, hflip=1.0, vflip=0.0, rotation=0.0, scale=None, color_jitter=0.0, normalize=False,
        epochs=750, patience=100, monitor="mean", class_weights=None, amp="none",
    ),
}


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the last checkpoint on disk is the last good one."""


# --------------------------------------------------------------------------------------------
# Small building blocks


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross-entropy, void pixels ignored, averaged over the non-void pixels of the batch."""
    return F.cross_entropy(logits.float(), target, weight=weight, ignore_index=VOID)


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision_plan(device_type: str, amp: str, *, bf16_supported: bool | None = None) -> tuple[torch.dtype | None, bool]:
    """Which autocast dtype (``None``: full fp32) and whether a ``GradScaler`` is needed.

    ``bf16`` has fp32's range, so it never needs loss scaling; ``fp16`` does, on any device.
    ``auto`` picks bf16 on GPUs that support it, else fp16 with a scaler on CUDA, and fp32 elsewhere.
    """
    if amp not in {"none", "bf16", "fp16", "auto"}:
        raise ValueError(f"--amp must be none, bf16, fp16 or auto, got {amp!r}")
    if bf16_supported is None:
        if device_type == "cuda":
            bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        else:
            bf16_supported = device_type == "cpu" and cpu_supports_bf16()
    if amp == "none" or (amp == "auto" and device_type != "cuda"):
        return None, False
    if amp == "auto":
        return (torch.bfloat16, False) if bf16_supported else (torch.float16, True)
    if amp == "bf16":
        if not bf16_supported:
            raise ValueError(f"--amp bf16: this {device_type} has no native bfloat16 support; use --amp none")
        return torch.bfloat16, False
    return torch.float16, True


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (default) or SGD with momentum; weight decay applies to weights, not biases."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    raise ValueError(f"--optimizer must be adam or sgd, got {config.optimizer!r}")


def build_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule, stepped after every batch (``None`` for a constant rate)."""
    total_steps = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "constant":
        return None
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    raise ValueError(f"--schedule must be constant, cosine or onecycle, got {config.schedule!r}")


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of epoch ``epoch`` on process ``rank``: data order and augmentation depend on nothing else."""
    return (seed * 1_000_003 + epoch * 1_009 + rank) % 2**63


def seed_everything(seed: int) -> None:
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


class InMemoryDataset(Dataset):
    """Decode every pair once (through ``prepare``, e.g. a resize), keep them as uint8, augment on access.

    Large JPEGs take longer to decode and resize than a small network takes to train on them;
    this takes that work out of every epoch after the first.
    """

    def __init__(self, dataset: Dataset, transform: Callable | None = None, *, progress: bool | None = None):
        self.transform = transform
        self.images, self.masks = [], []
        for image, mask in tqdm(dataset, desc="caching frames", leave=False, disable=_bars_disabled(progress)):
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


def _bars_disabled(progress: bool | None) -> bool | None:
    return None if progress is None else not progress  # tqdm: None hides bars when not on a terminal


# --------------------------------------------------------------------------------------------
# One epoch of training, one pass of evaluation


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    scheduler=None,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    class_weights: torch.Tensor | None = None,
    channels_last: bool = False,
    epoch: int = 0,
    progress: bool | None = None,
) -> float:
    """Train on every batch of ``loader`` once; return the mean batch loss (averaged over processes).

    Raises :class:`NonFiniteLossError` at the first NaN or infinite loss, before the weights change.
    """
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=_bars_disabled(progress), unit="batch")
    for step, (images, masks) in enumerate(bar):
        images, masks = _to_device(images, masks, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(images)
        loss = segmentation_loss(logits, masks, class_weights)
        non_finite = all_reduce_sum((~torch.isfinite(loss)).float())  # every process stops together
        if non_finite.item():
            raise NonFiniteLossError(
                f"the training loss is {loss.item()} at epoch {epoch}, batch {step + 1}; stopped before "
                f"changing the weights (lower --lr, or try --amp none)"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    totals = all_reduce_sum(torch.stack([loss_sum, torch.tensor(len(loader), dtype=torch.float64, device=device)]))
    return (totals[0] / totals[1].clamp(min=1)).item()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    n_classes: int,
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    per_image=None,
    progress: bool | None = None,
    desc: str = "validation",
):
    """Score ``model`` on ``loader``: ``(loss, SegmentationScores)`` over the whole split.

    The loss is the cross-entropy over all non-void pixels; the confusion matrix accumulates every
    pixel of every image and is summed over processes under ``torchrun``. When logits and masks
    differ in size (a model run on resized frames, scored on full-size masks) the logits are
    resized bilinearly to the mask. ``per_image`` (a ``PerImageJaccard``) also collects each
    image's Jaccard.
    """
    from .metrics import ConfusionMatrix

    model.eval()
    confusion = ConfusionMatrix(n_classes, ignore_index=VOID)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    pixels = torch.zeros((), dtype=torch.float64, device=device)
    for images, masks in tqdm(loader, desc=desc, leave=False, disable=_bars_disabled(progress), unit="batch"):
        images, masks = _to_device(images, masks, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(images)
        logits = logits.float()
        if logits.shape[-2:] != masks.shape[-2:]:
            logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)
        loss_sum += F.cross_entropy(logits, masks, ignore_index=VOID, reduction="sum").double()
        pixels += (masks != VOID).sum()
        confusion.update(logits, masks)
        if per_image is not None:
            per_image.update(logits, masks)
    confusion.reduce_from_all_processes()
    totals = all_reduce_sum(torch.stack([loss_sum, pixels]))
    return (totals[0] / totals[1].clamp(min=1)).item(), confusion.compute()


def _to_device(images, masks, device, channels_last):
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, masks.to(device, non_blocking=True)


# --------------------------------------------------------------------------------------------
# Data sets, loaders and the model of a config


def build_datasets(config: TrainConfig, ctx: DistributedContext | None = None) -> dict[str, Dataset]:
    """The train and validation splits (and test, where the data set has one), transformed per ``config``."""
    from .data import registry, transforms

    progress = config.progress if ctx is None or ctx.is_main else False
    augment = dict(
        crop_size=config.crop_size, hflip=config.hflip, vflip=config.vflip, rotation=config.rotation,
        scale=tuple(config.scale) if config.scale else None, color_jitter=config.color_jitter,
        normalize=config.normalize,
    )

    def split_transform(split: str, resize: int | None):
        if split == "train":
            return transforms.train_transforms(resize=resize, **augment)
        return transforms.eval_transforms(resize=resize, normalize=config.normalize)

    datasets = {}
    for split, count in (("train", config.n_train), ("val", config.n_eval), ("test", config.n_eval)):
        # With a cache, frames are decoded and resized once; only the rest runs at every access.
        load = transforms.eval_transforms(resize=config.resize, normalize=False) if config.cache else split_transform(split, config.resize)
        try:
            dataset = registry.get_dataset(config.data, split, transform=load, n_classes=config.n_classes,
                                           download=config.download and split == "train")
        except (FileNotFoundError, ValueError, KeyError):
            if split == "test":  # a data set without a test split: no final evaluation
                continue
            raise
        dataset = _evenly_spread(dataset, count)
        if config.cache:
            dataset = InMemoryDataset(dataset, split_transform(split, None), progress=progress)
        datasets[split] = dataset
    return datasets


def _evenly_spread(dataset: Dataset, count: int | None) -> Dataset:
    """``count`` items spread evenly over ``dataset`` (all of them when ``count`` is None or too large)."""
    if count is None or count >= len(dataset):
        return dataset
    return Subset(dataset, torch.linspace(0, len(dataset) - 1, count).round().long().tolist())


def train_loader(dataset: Dataset, config: TrainConfig, ctx: DistributedContext) -> DataLoader:
    """Shuffled training batches; call ``loader.sampler.set_epoch(e)`` before epoch ``e``.

    Epoch ``e`` is a function of ``(seed, e)`` only: the order comes from a ``DistributedSampler``
    (seeded by ``seed``, reshuffled by ``set_epoch``, one shard per process), and the augmentation of
    frame ``i`` runs under the seed ``(seed, e, i)`` in whichever worker draws it
    (:class:`~fcn_tutorial.data.loaders.SeededItems`). So a resumed run sees the same batches.
    """
    from .data.loaders import EpochSampler, SeededItems, pad_collate, seed_worker

    order = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed)
    return DataLoader(
        SeededItems(dataset, config.seed), batch_size=config.batch_size, sampler=EpochSampler(order),
        num_workers=config.num_workers, persistent_workers=config.num_workers > 0, collate_fn=pad_collate,
        worker_init_fn=seed_worker, pin_memory=ctx.device.type == "cuda",
        # Its own generator: starting workers must not draw from the global one, which drives dropout.
        generator=torch.Generator().manual_seed(config.seed),
    )


def eval_loader(dataset: Dataset, config: TrainConfig, ctx: DistributedContext) -> DataLoader:
    """Every image of ``dataset`` exactly once, split over the processes without padding."""
    from .data.loaders import pad_collate, seed_worker

    sampler = ShardSampler(len(dataset), ctx.rank, ctx.world_size)
    return DataLoader(
        dataset, batch_size=config.eval_batch_size, sampler=sampler, num_workers=config.num_workers,
        collate_fn=pad_collate, worker_init_fn=seed_worker, pin_memory=ctx.device.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed),
    )


def build_model_for(config: TrainConfig) -> nn.Module:
    from .models import build_model

    return build_model(
        config.model, config.n_classes, preset=config.preset, width=config.width,
        pretrained_backbone=config.pretrained_backbone, batch_norm=config.batch_norm,
    )


# --------------------------------------------------------------------------------------------
# The run


class RunLog:
    """Log lines to the terminal (above any progress bar) and to ``train.log``; silent off rank 0."""

    def __init__(self, path: Path | None, enabled: bool = True):
        self.path, self.enabled = path, enabled

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        tqdm.write(line, file=sys.stdout)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line + "\n")


def epoch_line(row: dict, n_classes: int) -> str:
    """The original tutorial's log line for one epoch."""
    classes = ", ".join(f"jacc val class {c} {row[f'val_jaccard_{c}']:f}" for c in range(n_classes))
    return (
        f"EPOCH {row['epoch']}: Avg epoch training cost train {row['train_loss']:f}, cost val {row['val_loss']:f}, "
        f"acc val {row['val_accuracy']:f}, {classes}, jacc val {row['val_jaccard_mean']:f} took {row['seconds']:f} s"
    )


def final_line(loss: float, scores, n_classes: int) -> str:
    """The original tutorial's closing line: the test scores of the best weights."""
    classes = ", ".join(f"jacc test class {c} {scores.jaccard[c]:f}" for c in range(n_classes))
    return (
        f"FINAL MODEL: err test {loss:f}, acc test {scores.pixel_accuracy:f}, {classes}, "
        f"jacc test {scores.mean_jaccard:f}"
    )


def monitored_value(row: dict, monitor: str) -> float:
    """The validation figure that decides the best epoch: mean Jaccard, or one class's."""
    key = "val_jaccard_mean" if monitor == "mean" else f"val_jaccard_{monitor}"
    if key not in row:
        raise ValueError(f"--monitor must be 'mean' or a class index, got {monitor!r}")
    value = row[key]
    return -math.inf if math.isnan(value) else value


def train(config: TrainConfig, *, resume: bool = False) -> list[dict]:
    """Train per ``config`` into the run folder ``config.out``; return the history (one dict per epoch).

    With ``resume=True`` the run continues from ``config.out/last.pt``. Under ``torchrun`` every
    process calls this; only rank 0 writes.
    """
    ctx = init_distributed(config.device)
    try:
        return _train(config, ctx, resume)
    finally:
        cleanup()


def _train(config: TrainConfig, ctx: DistributedContext, resume: bool) -> list[dict]:
    run_started = time.perf_counter()  # the time limit counts everything: data preparation too
    out = Path(config.out)
    device = ctx.device
    last_path, best_path = out / "last.pt", out / "best.pt"
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(last_path)
    elif last_path.exists():
        raise ValueError(f"run folder {out} already holds a run (last.pt); resume it with --resume {out} or pick another --out")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(config.to_json() + "\n", encoding="utf-8")
    log = RunLog(out / "train.log", enabled=ctx.is_main)
    progress = config.progress if ctx.is_main else False

    configure_determinism(config, device)
    seed_everything(config.seed)
    amp_dtype, use_scaler = precision_plan(device.type, config.amp)

    datasets = build_datasets(config, ctx)
    model = build_model_for(config).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    raw_model = model  # the module whose state_dict we save (no DDP or compile wrappers)
    optimizer = build_optimizer(raw_model, config)
    train_batches = train_loader(datasets["train"], config, ctx)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=len(train_batches))
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    class_weights = torch.tensor(config.class_weights, dtype=torch.float32, device=device) if config.class_weights else None

    history: list[dict] = []
    start_epoch, best, best_epoch, elapsed = 1, -math.inf, 0, 0.0
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        restore_rng_state(checkpoint["rng"])
        history = list(checkpoint["history"])
        start_epoch = checkpoint["epoch"] + 1
        best, best_epoch, elapsed = checkpoint["best"], checkpoint["best_epoch"], checkpoint["elapsed"]
        run_started -= elapsed  # the earlier sessions' time counts towards the limit
        if ctx.is_main:
            write_history(history, out / "history.csv")  # drop any row written after last.pt
        log(f"resumed {out} after epoch {checkpoint['epoch']} (best {best:f} at epoch {best_epoch})")
    else:
        n_params = sum(p.numel() for p in raw_model.parameters())
        log(f"training {config.model} ({config.preset}, width {config.width}, {n_params:,} parameters) on "
            f"{config.data}: {len(datasets['train'])} training / {len(datasets['val'])} validation images, {device}")

    # Training goes through DDP (gradients averaged over processes); evaluation runs the plain module,
    # since each process scores a different number of images.
    if ctx.is_distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    eval_model = raw_model
    if config.compile:
        model, eval_model = torch.compile(model), torch.compile(raw_model)
    val_loader = eval_loader(datasets["val"], config, ctx)

    stop_reason, curves_drawn = "reached the last epoch", time.perf_counter()
    epochs_bar = tqdm(range(start_epoch, config.epochs + 1), desc="epochs", disable=_bars_disabled(progress),
                      initial=start_epoch - 1, total=config.epochs, unit="epoch")
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
        train_loss = train_one_epoch(
            model, train_batches, optimizer, device,
            scheduler=scheduler, scaler=scaler, amp_dtype=amp_dtype, class_weights=class_weights,
            channels_last=config.channels_last, epoch=epoch, progress=progress,
        )
        val_loss, scores = evaluate(eval_model, val_loader, config.n_classes, device, amp_dtype=amp_dtype,
                                    channels_last=config.channels_last, progress=progress)
        seconds = time.perf_counter() - started
        elapsed = time.perf_counter() - run_started
        row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "val_loss": val_loss,
               "val_accuracy": float(scores.pixel_accuracy)}
        row.update({f"val_jaccard_{c}": float(j) for c, j in enumerate(scores.jaccard)})
        row.update({"val_jaccard_mean": float(scores.mean_jaccard), "seconds": seconds})
        history.append(row)

        improved = monitored_value(row, config.monitor) > best
        if improved:
            best, best_epoch = monitored_value(row, config.monitor), epoch
        if ctx.is_main:
            if improved:
                save_checkpoint({"model": raw_model.state_dict(), "config": asdict(config), "epoch": epoch,
                                 "scores": row}, best_path)
            save_checkpoint({
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch, "best": best, "best_epoch": best_epoch, "elapsed": elapsed,
                "config": asdict(config), "history": history, "rng": rng_state(),
            }, last_path)
            write_history(history, out / "history.csv")
            if time.perf_counter() - curves_drawn > 60:  # drawing costs a second or two: at most once a minute
                plot_history(history, out / "curves.png", title=f"{config.model} on {config.data}")
                curves_drawn = time.perf_counter()
        log(epoch_line(row, config.n_classes))
        epochs_bar.set_postfix(jaccard=f"{row['val_jaccard_mean']:.4f}", best=f"{best:.4f}", refresh=False)
        barrier()
    epochs_bar.close()
    if ctx.is_main and history:
        plot_history(history, out / "curves.png", title=f"{config.model} on {config.data}")
    log(f"stopped: {stop_reason}; best validation {config.monitor} Jaccard {best:f} at epoch {best_epoch}")

    if config.test and "test" in datasets and best_path.exists():
        raw_model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
        test_loss, test_scores = evaluate(eval_model, eval_loader(datasets["test"], config, ctx), config.n_classes, device,
                                          amp_dtype=amp_dtype, channels_last=config.channels_last,
                                          progress=progress, desc="test")
        log(final_line(test_loss, test_scores, config.n_classes))
        if ctx.is_main:
            result = {"loss": test_loss, "epoch": best_epoch, **_scores_dict(test_scores)}
            (out / "test.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return history


def _scores_dict(scores) -> dict:
    values = scores.as_dict() if hasattr(scores, "as_dict") else dict(vars(scores))
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in values.items()}


# --------------------------------------------------------------------------------------------
# Command line: fcn-tutorial train


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every :class:`TrainConfig` option as ``--option`` (defaults ``None``: the preset's recipe decides)."""
    a = parser.add_argument
    a("--data", help="a folder in any supported layout, or kvasir-seg | polyps912 | synthetic")
    a("--out", help="the run folder (config.json, history.csv, best.pt, last.pt, train.log, curves.png)")
    a("--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR (with its config.json)")
    a("--download", action="store_true", default=None, help="download a named data set if missing")
    a("--model", choices=["fcn32s", "fcn16s", "fcn8s"])
    a("--preset", choices=["paper", "original", "compact"], help="network variant; 'original' also sets the 2017 recipe")
    a("--width", type=float, help="channel multiplier (e.g. 0.25 for a quick CPU model)")
    a("--pretrained-backbone", action="store_true", default=None, help="start from ImageNet VGG16 weights")
    a("--batch-norm", action="store_true", default=None,
      help="batch norm after each VGG convolution (torchvision's vgg16_bn): trains faster from scratch")
    a("--n-classes", type=int)
    a("--resize", type=int, help="resize frames first (pixels); default: full size")
    a("--crop-size", type=int, help="random training crop (pixels; 0: whole frames)")
    a("--hflip", type=float, help="horizontal flip probability")
    a("--vflip", type=float, help="vertical flip probability")
    a("--rotation", type=float, help="random rotation range in degrees")
    a("--scale", type=float, nargs=2, metavar=("MIN", "MAX"), help="random rescale range")
    a("--color-jitter", type=float, help="colour jitter strength")
    a("--normalize", action="store_true", default=None, help="ImageNet mean/std normalisation")
    a("--cache", action="store_true", default=None, help="decode and resize every frame once, keep them in memory")
    a("--n-train", type=int, help="use only this many training frames (evenly spread)")
    a("--n-eval", type=int, help="use only this many validation/test frames")
    a("--batch-size", type=int)
    a("--eval-batch-size", type=int)
    a("--num-workers", type=int)
    a("--optimizer", choices=["adam", "sgd"])
    a("--lr", type=float)
    a("--momentum", type=float)
    a("--weight-decay", type=float)
    a("--schedule", choices=["constant", "cosine", "onecycle"])
    a("--epochs", type=int)
    a("--patience", type=int, help="early-stopping patience in epochs (0: never stop early)")
    a("--monitor", help="'mean' or a class index: the validation Jaccard that picks the best epoch")
    a("--class-weights", type=float, nargs="+")
    a("--time-limit", type=float, metavar="MINUTES",
      help="wall-time budget, data preparation included: start no epoch that would end after it")
    a("--device", choices=["auto", "cpu", "cuda", "mps"])
    a("--amp", choices=["none", "bf16", "fp16", "auto"], help="mixed precision")
    a("--channels-last", action="store_true", default=None)
    a("--compile", action="store_true", default=None, help="torch.compile the model")
    a("--seed", type=int)
    a("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    a("--no-test", dest="test", action="store_false", default=None, help="skip the final test-set evaluation")


# Options that may change when a run is resumed (the rest must stay as the run started).
RESUMABLE_OPTIONS = {"epochs", "time_limit", "patience", "progress", "num_workers", "test"}


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, bool]:
    """The config of ``fcn-tutorial train`` and whether it resumes a run."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    if given.get("crop_size") == 0:
        given["crop_size"] = None
    if given.get("patience") == 0:
        given["patience"] = None
    if args.resume:
        config_file = Path(args.resume) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"cannot resume: {config_file} does not exist")
        config = TrainConfig.from_dict(json.loads(config_file.read_text(encoding="utf-8")))
        changed = sorted(k for k, v in given.items() if k not in RESUMABLE_OPTIONS and v != getattr(config, k))
        if changed:
            raise ValueError(f"cannot change {changed} when resuming {args.resume}; only {sorted(RESUMABLE_OPTIONS)}")
        if config.schedule != "constant" and given.get("epochs", config.epochs) != config.epochs:
            raise ValueError(f"cannot change --epochs when resuming {args.resume}: its {config.schedule} "
                             f"learning-rate schedule spans {config.epochs} epochs")
        for key in RESUMABLE_OPTIONS & given.keys():
            setattr(config, key, given[key])
        config.out = str(args.resume)
        return config, True
    if "data" not in given or "out" not in given:
        raise ValueError("train needs --data and --out (or --resume RUN_DIR)")
    preset = given.pop("preset", "paper")
    return TrainConfig.for_preset(preset, **given), False


def _run(args: argparse.Namespace) -> int:
    config, resume = config_from_args(args)
    try:
        train(config, resume=resume)
    except NonFiniteLossError as error:
        message = f"fcn-tutorial train: stopped: {error}; {Path(config.out) / 'last.pt'} holds the last good epoch"
        print(message, file=sys.stderr)
        if Path(config.out).is_dir():
            with open(Path(config.out) / "train.log", "a", encoding="utf-8") as file:
                file.write(message + "\n")
        return 1
    return 0


def register(subparsers) -> None:
    """Add ``fcn-tutorial train`` to the command line."""
    parser = subparsers.add_parser(
        "train", help="train an FCN",
        description="Train an FCN on a segmentation data set (see fcn_tutorial.train). Options left out take "
                    "TrainConfig's defaults, or the 2017 recipe with --preset original.",
    )
    add_train_arguments(parser)
    parser.set_defaults(func=_run)
