"""DataLoaders for segmentation: seeded augmentation, and batches of frames of different sizes.

:func:`make_loaders` builds the training, validation and test loaders. Its randomness is a function
of ``seed`` alone: the order of the training frames comes from a generator seeded with ``seed``, and
the augmentation of frame ``i`` in epoch ``e`` runs under the torch seed ``(seed, e, i)``, whichever
worker process draws it. So the same seed gives the same batches with 0 or 2 workers, run after run.

:func:`pad_collate` stacks frames of different sizes into one batch, padding images with 0 and masks
with :data:`~fcn_tutorial.data.VOID` (ignored by the loss and the metrics).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .datasets import VOID

__all__ = ["Loaders", "SeededItems", "EpochLoader", "make_loaders", "pad_collate", "seed_worker"]


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]], *, image_fill: float = 0.0,
                mask_fill: int = VOID) -> tuple[torch.Tensor, torch.Tensor]:
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
    """``dataset`` whose item ``i`` is drawn under the torch seed ``(seed, epoch, i)``.

    Random transforms inside ``dataset`` (torchvision's use the torch generator) then give the same
    result for the same ``(seed, epoch, i)``, in any worker or in the main process, whose own random
    state is left untouched.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item_seed = int(np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1, np.uint64)[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed)
            return self.dataset[index]


class EpochLoader(DataLoader):
    """A DataLoader over :class:`SeededItems` that moves to the next epoch each time it is iterated."""

    def __iter__(self):
        self.dataset.epoch += 1  # before the workers start: they take a copy of the dataset
        return super().__iter__()


@dataclass
class Loaders:
    """The loaders of a data set: ``train``, ``val`` (also ``valid``) and ``test`` (None when not given)."""

    train: DataLoader
    val: DataLoader
    test: DataLoader | None = None

    @property
    def valid(self) -> DataLoader:
        return self.val


def make_loaders(train_set: Dataset, val_set: Dataset, test_set: Dataset | None = None, *, batch_size: int = 10,
                 eval_batch_size: int = 1, num_workers: int = 2, seed: int = 0, sampler: Sampler | None = None,
                 pin_memory: bool = False, drop_last: bool = False, persistent_workers: bool = False) -> Loaders:
    """Training, validation and test DataLoaders, reproducible from ``seed``.

    Training: shuffled (or ordered by ``sampler``, e.g. a ``DistributedSampler`` for multi-GPU runs),
    ``batch_size`` frames per batch, augmentation seeded per frame and epoch (see the module's doc),
    so the same seed gives the same batches with any ``num_workers``. Validation and test: in order,
    ``eval_batch_size`` full-size frames per batch (1 as in the 2017 tutorial; more are padded with
    VOID by :func:`pad_collate`). ``persistent_workers`` keeps worker processes between epochs (faster;
    the augmentation then stays seeded per worker rather than per epoch).
    """
    if batch_size < 1 or eval_batch_size < 1:
        raise ValueError(f"batch sizes must be positive, not {batch_size} and {eval_batch_size}")
    workers = dict(num_workers=num_workers, worker_init_fn=seed_worker, pin_memory=pin_memory,
                   persistent_workers=persistent_workers and num_workers > 0)
    train = EpochLoader(SeededItems(train_set, seed), batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                        generator=torch.Generator().manual_seed(seed), collate_fn=pad_collate, drop_last=drop_last,
                        **workers)

    def evaluation(dataset: Dataset | None) -> DataLoader | None:
        if dataset is None:
            return None
        return DataLoader(dataset, batch_size=eval_batch_size, shuffle=False, collate_fn=pad_collate,
                          generator=torch.Generator().manual_seed(seed), **workers)

    return Loaders(train, evaluation(val_set), evaluation(test_set))
