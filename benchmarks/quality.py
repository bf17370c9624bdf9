"""Quality per CPU-minute: run one training recipe and its evaluation, write one JSON (issue 10).

The recipe is the README's CPU quality run (FCN-8s compact, batch norm, from scratch, cached frames resized
to ``--size``, random crops, flips and scaling, Adam with a cosine schedule, bf16 autocast) with the levers
that issue 10 asks about, prototyped here before they become ``TrainConfig`` options:

* ``--loss ce+dice``: cross-entropy plus a soft Dice loss over the polyp class (void pixels ignored);
* ``--ema 0.998``: an exponential moving average of the weights (and batch-norm statistics), scored instead
  of the raw weights;
* ``--tta flips``: the softmax averaged over the frame and its horizontal, vertical and double flips;
* stronger augmentation (``--rotation``, ``--color-jitter``, ``--scale``), ``--size`` and ``--width``.

Every score is on the *full-size* masks (the scores upsampled to each frame's original size)::

    FCN_TUTORIAL_DATA=../shared/data python benchmarks/quality.py --epochs 12 --splits val \\
        --out benchmarks/results/quality-base.json

Times are CPU seconds (``time.process_time``) of one thread (``--threads 1``: on a busy machine two threads
spin while they wait for each other and inflate the CPU time); ``--idle-factor`` (see
``benchmarks/chapter6_quick.py``) turns them into wall seconds on the idle 2-core machine with two threads,
the "idle minutes" reported. ``--idle-minutes`` stops training before an epoch that would end past that budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from fcn_tutorial.data import get_dataset, pad_collate, train_transforms
from fcn_tutorial.metrics import ConfusionMatrix, PerImageJaccard
from fcn_tutorial.models import build_model
from fcn_tutorial.train import cpu_supports_bf16

sys.path.insert(0, str(Path(__file__).parent))
from chapter6_quick import CachedFrames, evenly_spread  # noqa: E402

VOID = 255


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice of the polyp class (index 1) over the batch's non-void pixels."""
    valid = target != VOID
    probability = logits.float().softmax(1)[:, 1][valid]
    truth = (target[valid] == 1).float()
    return 1 - (2 * (probability * truth).sum() + smooth) / (probability.sum() + truth.sum() + smooth)


def loss_fn(name: str):
    def ce(logits, target):
        return F.cross_entropy(logits.float(), target, ignore_index=VOID)

    if name == "ce":
        return ce
    if name == "dice":
        return dice_loss
    if name == "ce+dice":
        return lambda logits, target: ce(logits, target) + dice_loss(logits, target)
    raise ValueError(f"--loss must be ce, dice or ce+dice, got {name!r}")


@torch.no_grad()
def predict_probabilities(model, image: torch.Tensor, size, amp_dtype, tta: str) -> torch.Tensor:
    """Softmax of one ``3 x h x w`` frame, averaged over flips with ``tta="flips"``, upsampled to ``size``."""
    flips = [[], [-1], [-2], [-2, -1]] if tta == "flips" else [[]]
    batch = torch.stack([image.flip(dims) if dims else image for dims in flips])
    with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = model(batch)
    probability = logits.float().softmax(1)
    probability = torch.stack([p.flip(dims) if dims else p for p, dims in zip(probability, flips)]).mean(0)
    return F.interpolate(probability[None], size=size, mode="bilinear", align_corners=False)


def score(model, frames: CachedFrames, amp_dtype, tta: str) -> dict:
    """Pixel accuracy, polyp Jaccard over the whole split and its per-image mean, on full-size masks."""
    model.eval()
    confusion, per_image = ConfusionMatrix(2, ignore_index=VOID), PerImageJaccard(2, ignore_index=VOID)
    for index in range(len(frames)):
        image, mask = frames[index]
        probability = predict_probabilities(model, image, mask.shape[-2:], amp_dtype, tta)
        confusion.update(probability, mask[None])
        per_image.update(probability, mask[None])
    scores = confusion.compute()
    return {
        "pixel_accuracy": float(scores.pixel_accuracy),
        "polyp_jaccard": float(scores.jaccard[1]),
        "mean_jaccard": float(scores.mean_jaccard),
        "per_image_polyp_jaccard": float(per_image.mean()[1]),
    }


def main(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    amp_dtype = torch.bfloat16 if args.amp == "bf16" or (args.amp == "auto" and cpu_supports_bf16()) else None
    cpu_started, wall_started = time.process_time(), time.perf_counter()

    augment = train_transforms(
        crop_size=args.crop or None,
        hflip=args.hflip,
        vflip=args.vflip,
        rotation=args.rotation,
        scale=tuple(args.scale) if args.scale else None,
        color_jitter=args.color_jitter,
    )
    train = CachedFrames(evenly_spread(get_dataset(args.data, "train"), args.n_train), args.size, transform=augment)
    evaluation = {
        split: CachedFrames(evenly_spread(get_dataset(args.data, split), args.n_eval), args.size, resize_masks=False)
        for split in args.splits
    }

    model = build_model(args.model, 2, preset=args.preset, width=args.width, batch_norm=True)
    model = model.to(memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True) if args.ema else None
    loader = DataLoader(
        train,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=pad_collate,
        generator=torch.Generator().manual_seed(args.seed),
        num_workers=args.num_workers,
        persistent_workers=args.num_workers > 0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    if args.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=args.epochs * len(loader)
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(loader))
    criterion = loss_fn(args.loss)
    budget = args.idle_minutes * 60 / args.idle_factor if args.idle_minutes else None  # in CPU seconds

    history, stop = [], "reached the last epoch"
    for epoch in range(1, args.epochs + 1):
        used = time.process_time() - cpu_started
        if budget and history and used + history[-1]["cpu_s"] > budget:
            stop = f"idle-time budget of {args.idle_minutes:g} min"
            break
        model.train()
        epoch_cpu, losses = time.process_time(), []
        for images, masks in loader:
            images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                logits = model(images)
            loss = criterion(logits, masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
        history.append({"epoch": epoch, "loss": sum(losses) / len(losses), "cpu_s": time.process_time() - epoch_cpu})
        print(f"epoch {epoch}: loss {history[-1]['loss']:.4f}, {history[-1]['cpu_s']:.0f} CPU s", flush=True)
    train_cpu = time.process_time() - cpu_started

    scored = ema.module if ema is not None else model
    results = {}
    for split, frames in evaluation.items():
        eval_cpu = time.process_time()
        results[split] = score(scored, frames, amp_dtype, args.tta)
        results[split]["cpu_s"] = time.process_time() - eval_cpu
        if args.tta != "none" and args.compare_tta:
            results[f"{split}_without_tta"] = score(scored, frames, amp_dtype, "none")
        if ema is not None and args.compare_ema:
            results[f"{split}_raw_weights"] = score(model, frames, amp_dtype, args.tta)
        print(f"{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in results[split].items()), flush=True)
    total_cpu = time.process_time() - cpu_started
    result = {
        "settings": vars(args) | {"amp_dtype": str(amp_dtype)},
        "epochs_done": len(history),
        "stop": stop,
        "n_train": len(train),
        "train_cpu_s": train_cpu,
        "total_cpu_s": total_cpu,
        "idle_minutes_estimate": total_cpu * args.idle_factor / 60,
        "wall_s": time.perf_counter() - wall_started,
        "scores": results,
        "history": history,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.save:
        torch.save(scored.state_dict(), args.save)
    return result


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a = parser.add_argument
    a("--data", default="kvasir-seg")
    a("--model", default="fcn8s")
    a("--preset", default="compact")
    a("--width", type=float, default=0.25)
    a("--size", type=int, default=256, help="shorter side of the frames the network sees (pixels)")
    a("--crop", type=int, default=224, help="random square training crops (0: whole frames)")
    a("--hflip", type=float, default=0.5)
    a("--vflip", type=float, default=0.5)
    a("--rotation", type=float, default=0.0, help="degrees")
    a("--scale", type=float, nargs=2, default=[0.8, 1.2])
    a("--color-jitter", type=float, default=0.0)
    a("--n-train", type=int, default=None)
    a("--n-eval", type=int, default=None, help="score only this many frames of each split (smoke tests)")
    a("--batch-size", type=int, default=8)
    a("--lr", type=float, default=1e-3)
    a("--weight-decay", type=float, default=0.0)
    a("--schedule", choices=["cosine", "onecycle"], default="cosine")
    a("--epochs", type=int, default=12)
    a("--idle-minutes", type=float, default=None, help="stop before an epoch that would end past this budget")
    a("--loss", choices=["ce", "dice", "ce+dice"], default="ce")
    a(
        "--ema",
        type=float,
        default=0.0,
        help="EMA decay per step (0: off); batch-norm statistics are averaged too, which scored far below the raw "
        "weights in 10-epoch runs (book/results/quality_levers_proxy.csv): recompute them before trusting it",
    )
    a("--tta", choices=["none", "flips"], default="none")
    a("--compare-tta", action="store_true", help="also score without TTA")
    a("--compare-ema", action="store_true", help="also score the raw weights")
    a("--splits", nargs="+", default=["val"])
    a("--amp", choices=["auto", "bf16", "none"], default="auto")
    a("--num-workers", type=int, default=0)
    a("--threads", type=int, default=1)
    a("--idle-factor", type=float, default=0.9, help="idle 2-thread wall seconds per CPU second measured here")
    a("--seed", type=int, default=0)
    a("--out", help="write the JSON here")
    a("--save", help="save the scored weights here")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
