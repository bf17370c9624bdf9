"""DataLoaders for segmentation: seeded augmentation, and batches of frames of different sizes.

:func:`make_loaders` builds the training, validation and test loaders, the same ones a training run
uses (:func:`make_train_loader`, :func:`make_eval_loader`). Its randomness is a function of ``seed``
alone: the order of the training frames in epoch ``e`` comes from ``(seed, e)``, and the augmentation
of frame ``i`` in epoch ``e`` runs under the torch seed ``(seed, e, i)``, whichever worker process draws
it. So the same seed gives the same batches with 0 or 2 workers, run after run, and after a resume.

Worker processes default to :func:`default_num_workers` (from ``os.cpu_count()``); memory is pinned
for faster copies when the frames go to a CUDA GPU.

:func:`pad_collate` stacks frames of different sizes into one batch, padding images with 0 and masks
with :data:`~fcn_tutorial.data.VOID` (ignored by the loss and the metrics).
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .datasets import VOID

__all__ = [
    "Loaders",
    "SeededItems",
    "EpochSampler",
    "default_num_workers",
    "frames_collate",
    "make_loaders",
    "make_train_loader",
    "make_eval_loader",
    "pad_collate",
    "seed_worker",
]


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]], *, image_fill: float = 0.0, mask_fill: int = VOID
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(image, mask)`` pairs into ``N x 3 x H x W`` and ``N x H x W`` tensors.

    ``H`` and ``W`` are the largest height and width in the batch; smaller frames sit in the top-left
    corner, padded with ``image_fill`` and ``mask_fill`` (VOID). Same-size frames are just stacked.
    """
    images, masks = zip(*batch)
    height = max(image.shape[-2] for image in images)
    width = max(image.shape[-1] for image in images)
    image_batch = torch.full((len(images), images[0].shape[0], height, width), image_fill, dtype=images[0].dtype)
    mask_batch = torch.full((len(masks), height, width), mask_fill, dtype=masks[0].dtype)
    for index, (image, mask) in enumerate(zip(images, masks)):
        image_batch[index, :, : image.shape[-2], : image.shape[-1]] = image.as_subclass(torch.Tensor)
        mask_batch[index, : mask.shape[-2], : mask.shape[-1]] = mask.as_subclass(torch.Tensor)
    return image_batch, mask_batch


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and Python's ``random`` in a DataLoader worker from the torch seed it was given."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class SeededItems(Dataset):
    """``dataset`` whose items are asked for as ``(epoch, i)`` and drawn under the torch seed ``(seed, epoch, i)``.

    Random transforms inside ``dataset`` (torchvision's use the torch generator) then give the same
    result for the same ``(seed, epoch, i)``, in any worker or in the main process, whose own random
    state is left untouched. :class:`EpochSampler` supplies the ``(epoch, i)`` keys.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        item_seed = int(np.random.SeedSequence([self.seed, epoch, int(index)]).generate_state(1, np.uint64)[0])
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also queue seeds for every GPU backend (0.1 ms)
            torch.default_generator.manual_seed(item_seed)
            return self.dataset[index]


class EpochSampler(Sampler):
    """Yields ``(epoch, i)`` for each index ``i`` of ``sampler``; the epoch counts the passes (1, 2, ...).

    The epoch lives here, in the main process, so it is current even in persistent workers.
    ``set_epoch(e)`` makes the next pass epoch ``e`` (and is passed on, e.g. to a ``DistributedSampler``).
    """

    def __init__(self, sampler: Sampler):
        self.sampler, self.epoch, self._next = sampler, 0, None

    def set_epoch(self, epoch: int) -> None:
        self._next = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        self.epoch, self._next = (self._next if self._next is not None else self.epoch + 1), None
        epoch = self.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def default_num_workers(device: torch.device | str | None = None) -> int:
    """DataLoader worker processes when none are asked for: none when a CPU trains, else one per core beyond one.

    When the CPU runs the network, its threads already use every core: a worker augmenting frames beside
    them slows them more than the augmentation costs in the main process (on the 2-core machine an epoch
    of the README's CPU recipe took 18.0 s with one worker and 15.6 s with none,
    ``benchmarks/train_loop.py``). When a GPU runs it, the CPU is free: one worker per core beyond the
    main process, at most 4 (1 on Colab's 2-vCPU runtime). ``device=None``: the GPU if there is one.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cpu":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def frames_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Keep the frames of a batch as two lists: scoring brings each to the network's size on its own."""
    images, masks = zip(*batch)
    return [image.as_subclass(torch.Tensor) for image in images], [mask.as_subclass(torch.Tensor) for mask in masks]


def make_train_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    seed: int = 0,
    num_workers: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    drop_last: bool = False,
    persistent_workers: bool = True,
    sampler: Sampler | None = None,
) -> DataLoader:
    """Shuffled training batches whose order and augmentation depend on ``(seed, epoch)`` only.

    Call ``loader.sampler.set_epoch(e)`` before epoch ``e`` (otherwise each pass counts up from 1). The
    order comes from a ``DistributedSampler`` (seeded by ``seed``, reshuffled per epoch, one shard per
    process under ``torchrun``), and frame ``i`` of epoch ``e`` is augmented under the seed
    ``(seed, e, i)`` in whichever worker draws it (:class:`SeededItems`). So a resumed run, or one with
    another ``num_workers``, sees the same batches. ``num_workers=None``: :func:`default_num_workers`.
    ``sampler`` replaces that order (it then decides what ``set_epoch`` does).
    """
    if batch_size < 1:
        raise ValueError(f"the batch size must be positive, not {batch_size}")
    num_workers = default_num_workers() if num_workers is None else num_workers
    order = sampler or DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return DataLoader(
        SeededItems(dataset, seed),
        batch_size=batch_size,
        sampler=EpochSampler(order),
        collate_fn=pad_collate,
        drop_last=drop_last,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
        # Its own generator: starting workers must not draw from the global one, which drives dropout.
        generator=torch.Generator().manual_seed(seed),
    )


def make_eval_loader(
    dataset: Dataset,
    *,
    batch_size: int = 1,
    num_workers: int | None = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    collate_fn=frames_collate,
    persistent_workers: bool = False,
) -> DataLoader:
    """Every frame of ``dataset`` exactly once, in order, split over ``world_size`` processes without padding.

    Batches are lists of frames (:func:`frames_collate`), as :func:`fcn_tutorial.scoring.evaluate` takes
    them; pass ``collate_fn=pad_collate`` for padded tensors instead.
    """
    from ..distributed import ShardSampler

    if batch_size < 1:
        raise ValueError(f"the evaluation batch size must be positive, not {batch_size}")
    num_workers = default_num_workers() if num_workers is None else num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardSampler(len(dataset), rank, world_size),
        collate_fn=collate_fn,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
    )


@dataclass
class Loaders:
    """The loaders of a data set: ``train``, ``val`` (also ``valid``) and ``test`` (None when not given)."""

    train: DataLoader
    val: DataLoader
    test: DataLoader | None = None

    @property
    def valid(self) -> DataLoader:
        return self.val


def make_loaders(
    train_set: Dataset,
    val_set: Dataset,
    test_set: Dataset | None = None,
    *,
    batch_size: int = 10,
    eval_batch_size: int = 1,
    num_workers: int | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    sampler: Sampler | None = None,
    pin_memory: bool | None = None,
    drop_last: bool = False,
    persistent_workers: bool = False,
) -> Loaders:
    """Training, validation and test DataLoaders, reproducible from ``seed``: the loaders a training run uses.

    Training: :func:`make_train_loader` (shuffled per ``(seed, epoch)``, augmentation seeded per frame
    and epoch, so the same seed gives the same batches with any ``num_workers``). Validation and test:
    in order, ``eval_batch_size`` frames per batch (1 as in the 2017 tutorial; more are padded with VOID
    by :func:`pad_collate`). ``num_workers=None``: :func:`default_num_workers`; ``pin_memory=None``: on
    when CUDA is available. ``rank``/``world_size``: this process's shard under ``torchrun``;
    ``sampler`` replaces the training order.
    """
    if batch_size < 1 or eval_batch_size < 1:
        raise ValueError(f"batch sizes must be positive, not {batch_size} and {eval_batch_size}")
    num_workers = default_num_workers() if num_workers is None else num_workers
    pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
    train = make_train_loader(
        train_set,
        batch_size=batch_size,
        seed=seed,
        num_workers=num_workers,
        rank=rank,
        world_size=world_size,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=persistent_workers,
        sampler=sampler,
    )

    def evaluation(dataset: Dataset | None) -> DataLoader | None:
        if dataset is None:
            return None
        return make_eval_loader(
            dataset,
            batch_size=eval_batch_size,
            num_workers=num_workers,
            rank=rank,
            world_size=world_size,
            pin_memory=pin_memory,
            collate_fn=pad_collate,
            persistent_workers=persistent_workers,
        )

    return Loaders(train, evaluation(val_set), evaluation(test_set))
