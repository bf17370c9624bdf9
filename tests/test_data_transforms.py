"""Joint transforms keep image and mask aligned; presets; seeded loaders and void padding."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset, DistributedSampler
from torchvision import tv_tensors

from fcn_tutorial.data import VOID, make_loaders, pad_collate
from fcn_tutorial.data.loaders import default_num_workers
from fcn_tutorial.data.transforms import (
    RandomTranspose,
    RandomZoomCrop,
    eval_transforms,
    get_preset,
    original_preset,
    train_transforms,
)


def coded_pair(height=50, width=70, seed=0, block=5):
    """A mask of random blocks (0, 1, 2) and an image that encodes it: channel 0 = mask / 4, channel 1 = 1."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, 3, (height // block + 1, width // block + 1), generator=generator)
    mask = mask.repeat_interleave(block, 0).repeat_interleave(block, 1)[:height, :width]
    image = torch.stack([mask / 4, torch.ones(height, width), torch.rand(height, width, generator=generator)])
    return tv_tensors.Image(image.float()), tv_tensors.Mask(mask)


def assert_aligned(image, mask, exact=True):
    """The image still encodes the mask; pixels from outside the frame are 0 in the image and VOID in the mask.

    ``exact=False`` for a zoom, whose antialiased image resize blends the edges of the 5-pixel blocks
    (the mask, resized by nearest neighbour, keeps hard edges): most pixels of 10-pixel blocks must still agree.
    """
    valid = mask != VOID
    if exact:
        assert torch.equal((image[0][valid] * 4).round().long(), mask[valid])
        assert (image[1][valid] == 1).all()
        assert (image[1][~valid] == 0).all()
    else:
        assert ((image[0][valid] * 4).round().long() == mask[valid]).float().mean() > 0.75
        assert ((image[1] > 0.5) == valid).float().mean() > 0.9  # inside the frame: 1; outside: 0 and VOID


@pytest.mark.parametrize(
    "options",
    [
        dict(crop_size=32, hflip=0.5, vflip=0.5),
        dict(crop_size=32, hflip=0.5, vflip=0.5, transpose=0.5),
        dict(crop_size=96, hflip=1.0),  # larger than the frame: padded
        dict(crop_size=40, rotation=45, scale=(0.6, 1.4), hflip=0.5, vflip=0.5),
        dict(crop_size=40, scale=(0.5, 1.5)),  # zoomed out: windows larger than the frame, padded
        dict(crop_size=None, rotation=30),
        dict(crop_size=None, scale=(0.7, 1.3)),
    ],
)
def test_augmentation_keeps_image_and_mask_aligned(options):
    transform = train_transforms(**options)
    for seed in range(20):
        image, mask = transform(*coded_pair(seed=seed, block=5 if "scale" not in options else 10))
        assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
        assert mask.dtype == torch.int64 and image.dtype == torch.float32
        assert image.shape[1:] == mask.shape
        if options["crop_size"]:
            assert mask.shape == (options["crop_size"],) * 2
        assert_aligned(image, mask, exact="scale" not in options)
    if options["crop_size"] == 96:
        assert (mask == VOID).any()


def test_zoom_crop_labels_windows_and_padding():
    """RandomZoomCrop: labels stay labels; zoom z shows a window of size / z pixels; outside the frame is VOID."""
    image, mask = coded_pair(height=64, width=80)
    for zoom, window in ((2.0, 16), (0.5, 64)):
        torch.manual_seed(0)
        out_image, out_mask = RandomZoomCrop(32, (zoom, zoom))(image, mask)
        assert out_image.shape == (3, 32, 32) and out_mask.shape == (32, 32)
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, VOID}
        assert RandomZoomCrop(32, (zoom, zoom)).make_params([image, mask])["window"] == [window, window]
    assert not (out_mask == VOID).all() and (out_mask != VOID).any()
    # a window of 64 on a 64-pixel-high frame fits vertically; zoom 0.25 (128 pixels) must be padded
    torch.manual_seed(0)
    _, padded = RandomZoomCrop(32, (0.25, 0.25))(image, mask)
    assert (padded == VOID).float().mean() > 0.3


def test_flips_and_transpose_give_all_eight_orientations_equally_often():
    """hflip, vflip and transpose at 0.5: the 8 symmetries of a square, each about 1/8 of the time, mask alongside."""
    image = tv_tensors.Image(torch.arange(9.0).reshape(1, 3, 3).expand(3, 3, 3).clone())
    mask = tv_tensors.Mask(torch.arange(9).reshape(3, 3))
    transform = train_transforms(crop_size=None, hflip=0.5, vflip=0.5, transpose=0.5)
    seen: dict[tuple, int] = {}
    torch.manual_seed(0)
    for _ in range(800):
        out_image, out_mask = transform(image, mask)
        assert isinstance(out_mask, tv_tensors.Mask) and torch.equal(out_image[0].long(), out_mask)
        key = tuple(out_mask.flatten().tolist())
        seen[key] = seen.get(key, 0) + 1
    rotations = {tuple(torch.rot90(mask, k, (0, 1)).flatten().tolist()) for k in range(4)}
    assert len(seen) == 8 and rotations <= set(seen)  # quarter turns included
    assert min(seen.values()) > 60 and max(seen.values()) < 140  # 100 expected each


def test_transpose_swaps_rows_and_columns_of_image_and_mask():
    image, mask = coded_pair(height=20, width=30)
    out_image, out_mask = RandomTranspose(p=1.0)(image, mask)
    assert out_image.shape == (3, 30, 20) and isinstance(out_image, tv_tensors.Image)
    assert torch.equal(out_mask, mask.transpose(0, 1)) and isinstance(out_mask, tv_tensors.Mask)
    assert torch.equal(out_image, image.transpose(1, 2))
    same_image, same_mask = RandomTranspose(p=0.0)(image, mask)
    assert same_image is image and same_mask is mask


def test_zoom_crop_costs_less_than_zooming_the_whole_frame():
    """The crop is resized, not the frame: the zoom-and-crop pipeline reads a window, never the whole frame."""
    steps = [type(step).__name__ for step in train_transforms(crop_size=224, scale=(0.8, 1.2)).steps.transforms]
    assert steps == ["RandomZoomCrop", "RandomHorizontalFlip"]
    steps = [type(step).__name__ for step in train_transforms(crop_size=224, rotation=10).steps.transforms]
    assert steps == ["RandomRotation", "RandomCrop", "RandomHorizontalFlip"]


def test_no_loader_workers_when_a_cpu_trains(monkeypatch):
    """On a CPU the network's threads use every core: augmentation runs in the main process (issue 10)."""
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert default_num_workers("cpu") == 0
    assert default_num_workers("cuda") == 4
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_num_workers("cuda:0") == 1


def test_plain_tensors_are_treated_as_image_and_mask():
    image, mask = coded_pair()
    out_image, out_mask = train_transforms(crop_size=24, hflip=1.0)(
        image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
    )
    assert out_mask.shape == (24, 24)
    assert_aligned(out_image, out_mask)


def test_colour_jitter_changes_the_image_only():
    image, mask = coded_pair()
    out_image, out_mask = train_transforms(crop_size=None, hflip=0.0, color_jitter=0.5)(image, mask)
    assert torch.equal(out_mask, mask) and not torch.equal(out_image, image)


def test_resize_keeps_labels_and_normalize():
    image, mask = coded_pair()
    out_image, out_mask = eval_transforms(resize=(25, 35), normalize=True)(image, mask)
    assert out_mask.shape == (25, 35) and set(out_mask.unique().tolist()) <= {0, 1, 2}
    mean = torch.tensor([0.485, 0.456, 0.406])
    assert torch.allclose(out_image[1], (1 - mean[1]) / 0.224 * torch.ones(25, 35))
    assert eval_transforms()(image, mask)[0].equal(image)


def test_original_preset():
    preset = original_preset()
    assert (preset.batch_size, preset.eval_batch_size) == (10, 1)
    image, mask = coded_pair(224, 224)
    out_image, out_mask = preset.train_transform(image, mask)
    assert torch.equal(out_mask, mask.flip(-1)) and torch.equal(out_image, image.flip(-1))  # always mirrored
    big = coded_pair(300, 400)
    assert preset.train_transform(*big)[1].shape == (224, 224)
    assert preset.eval_transform(*big)[1].shape == (300, 400)  # full-size evaluation
    assert torch.equal(original_preset(hflip=0.0).train_transform(image, mask)[1], mask)
    with pytest.raises(ValueError, match="unknown data preset"):
        get_preset("fancy")


# --------------------------------------------------------------------------------------------
# Loaders


class CodedFrames(Dataset):
    """Frames of varied sizes whose image encodes the mask, augmented by a joint transform."""

    def __init__(self, n=12, transform=None):
        self.pairs = [coded_pair(40 + 3 * i, 50 + 2 * i, seed=i) for i in range(n)]
        self.transform = transform

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        image, mask = self.pairs[index]
        return self.transform(image, mask) if self.transform else (image, mask)


def batches(loader, epochs=2):
    return [batch for _ in range(epochs) for batch in loader]


def test_pad_collate_pads_masks_with_void():
    images, masks = pad_collate([coded_pair(10, 20), coded_pair(15, 12)])
    assert images.shape == (2, 3, 15, 20) and masks.shape == (2, 15, 20)
    assert (masks[0, 10:] == VOID).all() and (masks[1, :, 12:] == VOID).all()
    assert (images[0, :, 10:] == 0).all() and type(images) is torch.Tensor


def test_same_seed_same_batches_with_0_and_2_workers():
    dataset = CodedFrames(transform=train_transforms(crop_size=32, hflip=0.5, rotation=20))
    runs = {
        workers: [
            batches(make_loaders(dataset, dataset, batch_size=4, num_workers=workers, seed=seed).train)
            for seed in (0, 0, 1)
        ]
        for workers in (0, 2)
    }
    for first, second, other in runs.values():
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second))
        assert not torch.equal(first[0][1], other[0][1])
        assert not torch.equal(first[0][1], first[3][1])  # the second epoch differs from the first
        for images, masks in first:
            for image, mask in zip(images, masks):
                assert_aligned(image, mask)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(runs[0][0], runs[2][0]))  # and across worker counts


def test_evaluation_loaders_take_full_frames_and_sampler_is_used():
    dataset = CodedFrames(n=6)
    loaders = make_loaders(dataset, dataset, dataset, batch_size=2, eval_batch_size=2, num_workers=0)
    images, masks = next(iter(loaders.valid))
    assert images.shape == (2, 3, 43, 52) and (masks[0, 40:] == VOID).all()
    assert len(loaders.test) == 3
    sampler = DistributedSampler(dataset, num_replicas=2, rank=0, shuffle=False)
    loaders = make_loaders(dataset, dataset, batch_size=1, num_workers=0, sampler=sampler)
    assert len(loaders.train) == 3
    assert [masks.shape for _, masks in loaders.train] == [(1, 40 + 3 * i, 50 + 2 * i) for i in (0, 2, 4)]


def test_persistent_workers_still_change_the_augmentation_every_epoch():
    dataset = CodedFrames(n=4, transform=train_transforms(crop_size=24, hflip=0.5))
    plain = batches(make_loaders(dataset, dataset, batch_size=4, num_workers=0, seed=7).train)
    kept = batches(make_loaders(dataset, dataset, batch_size=4, num_workers=2, seed=7, persistent_workers=True).train)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(plain, kept))
    assert not torch.equal(kept[0][1], kept[1][1])
