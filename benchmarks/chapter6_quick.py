"""Chapter 6's quick profile, measured: FCN-32s, then FCN-16s from it, then FCN-8s from that (staged training).

Trains the three variants the way Long et al. did (see :mod:`fcn_tutorial.models.staged`) on cached, resized
Kvasir-SEG frames, and scores each stage on the *full-size* masks of the chapter's validation frames (the
network's scores are upsampled to each frame's original size). Prints one line per stage and writes a JSON::

    FCN_TUTORIAL_DATA=../shared/data python benchmarks/chapter6_quick.py --size 128 --width 0.125 \\
        --epochs 8 6 6 --out benchmarks/results/chapter6.json

Times are CPU seconds (``time.process_time``) as well as wall seconds: on a machine shared with other jobs the
wall time says little. Run with ``--threads 1`` there: two threads on a busy machine spin while they wait for
each other and inflate the CPU time up to seven-fold. ``--idle-factor`` turns one thread's CPU seconds into
seconds of wall time on the idle 2-core machine with two threads; its default 0.9 was calibrated on this
machine's busiest hours (a bare FCN-8s training step, compact width 0.25, 224 px, bf16: 25 images per CPU
second on one thread here, against 27.8 images/s of wall time measured on the idle machine with two).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms.v2 import functional as TF

from fcn_tutorial.data import get_dataset, pad_collate, train_transforms
from fcn_tutorial.metrics import PerImageJaccard
from fcn_tutorial.models import build_model
from fcn_tutorial.models.staged import init_from_coarser
from fcn_tutorial.train import cpu_supports_bf16, evaluate, train_one_epoch

VARIANTS = ("fcn32s", "fcn16s", "fcn8s")


class CachedFrames(Dataset):
    """Frames decoded and resized once (uint8 in memory); ``transform(image, mask)`` runs at every access."""

    def __init__(self, dataset: Dataset, size: int | None, *, resize_masks: bool = True, transform=None):
        self.transform, self.images, self.masks = transform, [], []
        for image, mask in dataset:
            if size is not None:
                image = TF.resize(image, [size], antialias=True)
                if resize_masks:
                    mask = TF.resize(mask[None], [size], interpolation=TF.InterpolationMode.NEAREST)[0]
            self.images.append((image * 255).round().to(torch.uint8))
            self.masks.append(mask.to(torch.uint8))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image, mask = self.images[index].float() / 255, self.masks[index].long()
        if self.transform is not None:
            image, mask = self.transform(image, mask)
            image, mask = image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
        return image, mask


def evenly_spread(dataset: Dataset, count: int | None) -> Dataset:
    """``count`` items spread evenly over ``dataset`` (as ``TrainConfig(n_train=..., n_eval=...)`` picks them)."""
    if count is None or count >= len(dataset):
        return dataset
    return Subset(dataset, torch.linspace(0, len(dataset) - 1, count).round().long().tolist())


def load_frames(args) -> tuple[CachedFrames, CachedFrames]:
    """Training frames at ``--size`` (masks too), validation frames at ``--size`` with their full-size masks."""
    augment = train_transforms(
        crop_size=args.crop or None,
        hflip=args.hflip,
        vflip=args.vflip,
        rotation=args.rotation,
        scale=tuple(args.scale) if args.scale else None,
        color_jitter=args.color_jitter,
    )
    train = CachedFrames(evenly_spread(get_dataset(args.data, "train"), args.n_train), args.size, transform=augment)
    val = CachedFrames(evenly_spread(get_dataset(args.data, "val"), args.n_eval), args.size, resize_masks=False)
    return train, val


def score(model, val: CachedFrames, amp_dtype) -> dict:
    """Pixel accuracy and polyp Jaccard (whole split and per-image mean) on the full-size masks."""
    per_image = PerImageJaccard(2, ignore_index=255)
    loader = DataLoader(val, batch_size=1, collate_fn=one_frame)
    loss, scores = evaluate(model, loader, 2, torch.device("cpu"), amp_dtype=amp_dtype, per_image=per_image)
    polyp = per_image.values[:, 1]
    return {
        "loss": loss,
        "pixel_accuracy": float(scores.pixel_accuracy),
        "polyp_jaccard": float(scores.jaccard[1]),
        "mean_jaccard": float(scores.mean_jaccard),
        "per_image_polyp_jaccard": float(per_image.mean()[1]),
        "worst_image_polyp_jaccard": float(polyp.nan_to_num(1.0).min()),
    }


def one_frame(batch):
    """A batch of one frame whose mask is larger than its image (full size against resized)."""
    ((image, mask),) = batch
    return image[None], mask[None]


def background_baseline(val: CachedFrames) -> float:
    """The pixel accuracy of a model that calls every pixel background."""
    background = sum(int((m == 0).sum()) for m in val.masks)
    labelled = sum(int((m != 255).sum()) for m in val.masks)
    return background / labelled


def train_stage(model, train: CachedFrames, epochs: int, lr: float, args, amp_dtype, generator) -> list[float]:
    """``epochs`` epochs of Adam with a cosine schedule from ``lr`` to 0; the mean training loss of each."""
    loader = DataLoader(
        train,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=generator,
        collate_fn=pad_collate,
        num_workers=args.num_workers,
        persistent_workers=args.num_workers > 0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * len(loader)))
    weights = torch.tensor(args.class_weights) if args.class_weights else None
    losses = []
    for epoch in range(1, epochs + 1):
        cpu = time.process_time()
        losses.append(
            train_one_epoch(
                model,
                loader,
                optimizer,
                torch.device("cpu"),
                scheduler=scheduler,
                amp_dtype=amp_dtype,
                class_weights=weights,
                channels_last=args.channels_last,
                epoch=epoch,
                progress=False,
            )
        )
        print(f"  epoch {epoch}: loss {losses[-1]:.4f}, {time.process_time() - cpu:.1f} CPU s", flush=True)
    return losses


def main(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    amp_dtype = torch.bfloat16 if args.amp == "bf16" or (args.amp == "auto" and cpu_supports_bf16()) else None
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    train, val = load_frames(args)
    result = {
        "settings": vars(args) | {"amp_dtype": str(amp_dtype)},
        "n_train": len(train),
        "n_val": len(val),
        "background_pixel_accuracy": background_baseline(val),
        "cache": {"cpu_s": time.process_time() - started_cpu, "wall_s": time.perf_counter() - started_wall},
        "stages": [],
    }
    print(
        f"{len(train)} training frames at {args.size} px, {len(val)} validation frames scored at full size; "
        f"all-background pixel accuracy {result['background_pixel_accuracy']:.3f}; autocast {amp_dtype}",
        flush=True,
    )
    generator = torch.Generator().manual_seed(args.seed)
    coarser = None
    for name, epochs, lr in zip(VARIANTS, args.epochs, args.lr):
        model = build_model(name, 2, preset=args.preset, width=args.width, batch_norm=True)
        if args.no_dropout:  # dropout after fc6 and fc7 slows a short run from scratch down
            model.backbone.drop6.p = model.backbone.drop7.p = 0.0
        if coarser is not None and args.staged:
            init_from_coarser(model, coarser)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        cpu, wall = time.process_time(), time.perf_counter()
        losses = train_stage(model, train, epochs, lr, args, amp_dtype, generator)
        train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu, wall = time.process_time(), time.perf_counter()
        scores = score(model, val, amp_dtype)
        stage = {
            "model": name,
            "epochs": epochs,
            "lr": lr,
            "train_losses": losses,
            "train_cpu_s": train_cpu,
            "train_wall_s": train_wall,
            "eval_cpu_s": time.process_time() - cpu,
            "eval_wall_s": time.perf_counter() - wall,
            **scores,
        }
        result["stages"].append(stage)
        print(
            f"{name}: {epochs} epochs, lr {lr:g}, train {train_cpu:.0f} CPU s (~{train_cpu * args.idle_factor:.0f} "
            f"idle s), eval {stage['eval_cpu_s']:.0f} CPU s; pixel acc {scores['pixel_accuracy']:.3f}, polyp J "
            f"{scores['polyp_jaccard']:.3f} (per image {scores['per_image_polyp_jaccard']:.3f}, "
            f"worst {scores['worst_image_polyp_jaccard']:.2f}), last loss {(losses or [float('nan')])[-1]:.3f}",
            flush=True,
        )
        coarser = model
    result["total_cpu_s"] = time.process_time() - started_cpu
    result["total_wall_s"] = time.perf_counter() - started_wall
    total_train = sum(s["train_cpu_s"] for s in result["stages"])
    print(
        f"training {total_train:.0f} CPU s (~{total_train * args.idle_factor:.0f} idle s); everything "
        f"{result['total_cpu_s']:.0f} CPU s, {result['total_wall_s']:.0f} wall s",
        flush=True,
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a = parser.add_argument
    a("--data", default="kvasir-seg")
    a("--size", type=int, default=128, help="shorter side of the frames the network sees (pixels)")
    a("--crop", type=int, default=0, help="random square training crops (0: whole frames, padded to a batch)")
    a("--width", type=float, default=0.125)
    a("--preset", default="compact")
    a("--n-train", type=int, default=None, help="training frames, evenly spread (default: all)")
    a("--n-eval", type=int, default=40, help="validation frames, evenly spread (the quick profile's 40)")
    a("--epochs", type=int, nargs=3, default=[8, 6, 6], metavar=("E32", "E16", "E8"))
    a("--lr", type=float, nargs=3, default=[3e-3, 1e-3, 1e-3], metavar=("LR32", "LR16", "LR8"))
    a("--no-staged", dest="staged", action="store_false", help="train each variant from scratch")
    a("--dropout", dest="no_dropout", action="store_false", help="keep the dropout after fc6 and fc7")
    a("--no-dropout", action="store_true", default=True, help="no dropout after fc6 and fc7 (the default)")
    a("--batch-size", type=int, default=4)
    a("--weight-decay", type=float, default=0.0)
    a("--class-weights", type=float, nargs=2, default=[1.0, 3.0], help="cross-entropy weights of background and polyp")
    a("--hflip", type=float, default=0.5)
    a("--vflip", type=float, default=0.5)
    a("--rotation", type=float, default=0.0)
    a("--scale", type=float, nargs=2, default=None)
    a("--color-jitter", type=float, default=0.0)
    a("--amp", choices=["auto", "bf16", "none"], default="auto")
    a("--channels-last", action="store_true")
    a("--num-workers", type=int, default=0)
    a("--threads", type=int, default=1)
    a("--idle-factor", type=float, default=0.9, help="idle 2-thread wall seconds per CPU second measured here")
    a("--seed", type=int, default=0)
    a("--out", help="write the JSON here")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
