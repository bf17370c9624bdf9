"""The training loop itself: :func:`train_one_epoch`, and :func:`evaluate` to score a split.

This module holds what chapter 6 prints: one pass over the training batches, and the loss
(cross-entropy, Dice or both, :func:`segmentation_loss`), optimiser and weight average (:func:`build_ema`)
that go with it. It knows nothing about run folders, checkpoints or time limits
(:mod:`fcn_tutorial.run`), nor about the command line (:mod:`fcn_tutorial.train`). :func:`evaluate`
is the package's one scoring function, :func:`fcn_tutorial.scoring.evaluate`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from .data import VOID
from .distributed import all_reduce_sum
from .progress import progress_bar
from .scoring import evaluate

__all__ = [
    "NonFiniteLossError",
    "LOSSES",
    "dice_loss",
    "lovasz_loss",
    "segmentation_loss",
    "build_ema",
    "build_optimizer",
    "build_scheduler",
    "train_one_epoch",
    "evaluate",
]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the weights were not changed by that batch."""


LOSSES = ("ce", "dice", "ce+dice", "ce+dice-per-image", "ce+lovasz")


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0, *, per_image: bool = False
) -> torch.Tensor:
    """``1 - soft Dice`` of the foreground classes (for polyps: class 1) over the non-void pixels.

    With ``p`` the softmax probability of the class and ``t`` 1 where the truth is that class,
    Dice is ``(2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)``. By default the sums run over every
    pixel of the batch, so a frame without a polyp counts neither as a perfect nor as a failed frame, and
    large polyps weigh more than small ones. With ``per_image`` each frame that shows the class gets its
    own Dice and these are averaged: a small polyp counts as much as a large one, as in the per-image mean
    Jaccard (frames without the class are left to the cross-entropy). With several foreground classes
    their losses are averaged. Unlike cross-entropy, it weighs the polyp as a whole, however few pixels it covers.

    >>> logits = torch.tensor([[[[0.0, 0.0]], [[0.0, 0.0]]]])     # p(polyp) = 0.5 on both pixels
    >>> round(dice_loss(logits, torch.tensor([[[1, 0]]])).item(), 4)     # 1 - (2 * 0.5 + 1) / (1 + 1 + 1)
    0.3333
    """
    valid = target != VOID
    probabilities = logits.float().softmax(dim=1)
    losses = []
    for c in range(1, logits.shape[1]):
        if per_image:
            p = probabilities[:, c] * valid  # void pixels count for nothing (and are never class c)
            t = (target == c).float()
            t_sums = t.sum((1, 2))  # pixels of class c per frame (exact: whole numbers)
            shown = t_sums > 0  # the frames (crops) that show class c
            p, t = p[shown], t[shown]
            dice = (2 * (p * t).sum((1, 2)) + smooth) / (p.sum((1, 2)) + t_sums[shown] + smooth)
            losses.append((1 - dice).mean() if shown.any() else logits.sum() * 0)  # none shows it: adds 0
        else:
            p = probabilities[:, c][valid]
            t = (target[valid] == c).float()
            losses.append(1 - (2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth))
    return torch.stack(losses).mean()


def lovasz_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The Lovász-softmax loss (Berman et al., 2018) of the foreground classes, per frame, void ignored.

    For one frame and class, sort the pixels by their error ``|t - p|`` (``t`` 1 where the truth is the
    class, ``p`` its softmax probability), largest first. Calling the first ``k`` sorted pixels wrong costs
    the Jaccard loss ``J_k = 1 - |truth minus those k| / |truth plus those k|``; the loss weighs each
    pixel's error by the step ``J_k - J_(k-1)`` it causes. On hard 0/1 predictions it *is* ``1 - Jaccard``
    of the frame; in between it is the tightest convex surrogate of it, so it trains the per-image Jaccard
    directly. As with ``dice_loss(per_image=True)``, frames that do not show the class are left to the
    cross-entropy, and the frames' losses are averaged.

    >>> logits = torch.tensor([[[[-20.0, -20.0, 20.0]], [[20.0, 20.0, -20.0]]]])  # drawn: polyp, polyp, background
    >>> round(lovasz_loss(logits, torch.tensor([[[1, 0, 1]]])).item(), 4)  # truth: polyp, background, polyp
    0.6667

    (the two masks share one of the three pixels they cover: Jaccard 1 / 3, loss 2 / 3).
    """
    valid = (target != VOID).flatten(1)
    probabilities = logits.float().softmax(dim=1)
    losses = []
    for c in range(1, logits.shape[1]):
        t = (target == c).flatten(1).float()
        shown = t.sum(1) > 0  # the frames (crops) that show class c
        if not shown.any():
            losses.append(logits.sum() * 0)  # none shows it: adds 0, keeps the graph
            continue
        # void pixels get error 0: sorted last, they weigh nothing, as if they were left out
        errors = ((t - probabilities[:, c].flatten(1)).abs() * valid)[shown]
        errors, order = errors.sort(dim=1, descending=True)
        t = t[shown].gather(1, order)
        positives = t.sum(1, keepdim=True)
        jaccard_loss = 1 - (positives - t.cumsum(1)) / (positives + (1 - t).cumsum(1))
        steps = torch.cat([jaccard_loss[:, :1], jaccard_loss[:, 1:] - jaccard_loss[:, :-1]], dim=1)
        losses.append((errors * steps).sum(1).mean())
    return torch.stack(losses).mean()


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *, loss: str = "ce"
) -> torch.Tensor:
    """The training loss, void pixels ignored: ``"ce"`` (pixel-wise cross-entropy averaged over the non-void
    pixels of the batch, ``weight`` per class), ``"dice"`` (:func:`dice_loss`), ``"ce+dice"``, their sum, or
    ``"ce+dice-per-image"``, the sum with Dice averaged over the frames (``dice_loss(per_image=True)``), or
    ``"ce+lovasz"``, cross-entropy plus the Lovász loss of each frame (:func:`lovasz_loss`)."""
    if loss not in LOSSES:
        raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    total = torch.zeros((), device=logits.device)
    if loss in ("ce", "ce+dice", "ce+dice-per-image", "ce+lovasz"):
        total = total + F.cross_entropy(logits.float(), target, weight=weight, ignore_index=VOID)
    if loss in ("dice", "ce+dice"):
        total = total + dice_loss(logits, target)
    if loss == "ce+dice-per-image":
        total = total + dice_loss(logits, target, per_image=True)
    if loss == "ce+lovasz":
        total = total + lovasz_loss(logits, target)
    return total


def build_ema(model: nn.Module, decay: float, every: int = 1) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and batch-norm statistics.

    After every step, ``ema.update_parameters(model)`` sets each averaged tensor to
    ``decay * average + (1 - decay) * current``; the first call copies the weights. ``ema.module`` is
    a network like ``model`` holding the average: it is what validation scores and checkpoints save.
    With ``decay`` 0.998 the average spans about the last 500 steps.

    Each update reads every weight of both networks and writes the average: memory traffic more than
    arithmetic. With ``every`` K, :func:`train_one_epoch` updates the average after every K-th step only
    (the average keeps K as ``ema.every``), with the decay ``decay ** K``: the same span of steps, sampled
    every K-th, for a K-th of the traffic.
    """
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay**every), use_buffers=True)
    average.every = every
    return average


def build_optimizer(model: nn.Module, config) -> torch.optim.Optimizer:
    """Adam (default), AdamW or SGD with momentum, per ``config``; weight decay applies to weights, not biases.

    Adam adds ``weight_decay x w`` to the gradient, where Adam's per-weight scaling then weakens it for
    weights with large gradients; AdamW (Loshchilov and Hutter, 2019) shrinks every weight by
    ``lr x weight_decay`` at each step instead, apart from the gradient.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    raise ValueError(f"--optimizer must be adam, adamw or sgd, got {config.optimizer!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int):
    """The learning-rate schedule of ``config``, stepped after every batch (``None`` for a constant rate)."""
    total_steps = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "constant":
        return None
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    raise ValueError(f"--schedule must be constant, cosine or onecycle, got {config.schedule!r}")


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
    loss: str = "ce",
    ema: AveragedModel | None = None,
    epoch: int = 0,
    progress: bool | None = None,
) -> float:
    """Train on every batch of ``loader`` once; return the mean batch loss (averaged over processes).

    ``loss`` names the loss (:func:`segmentation_loss`); ``ema`` (:func:`build_ema`) is updated after every
    ``ema.every``-th step of the epoch (every step if it has no ``every``).

    Raises :class:`NonFiniteLossError` at the first NaN or infinite loss, before the weights change.
    """
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    bar = progress_bar(loader, progress=progress, desc=f"epoch {epoch}", leave=False, unit="batch")
    for step, (images, masks) in enumerate(bar):
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(images)
        batch_loss = segmentation_loss(logits, masks, class_weights, loss=loss)
        non_finite = all_reduce_sum((~torch.isfinite(batch_loss)).float())  # every process stops together
        if non_finite.item():
            raise NonFiniteLossError(
                f"the training loss is {batch_loss.item()} at epoch {epoch}, batch {step + 1}; stopped before "
                f"changing the weights (lower --lr, or try --amp none)"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(batch_loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            batch_loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None and (step + 1) % getattr(ema, "every", 1) == 0:
            ema.update_parameters(model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model)
        loss_sum += batch_loss.detach()
        bar.set_postfix(loss=f"{batch_loss.item():.4f}", refresh=False)
    totals = all_reduce_sum(torch.stack([loss_sum, torch.tensor(len(loader), dtype=torch.float64, device=device)]))
    return (totals[0] / totals[1].clamp(min=1)).item()
