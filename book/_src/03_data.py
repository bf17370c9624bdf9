# %% tags=["colab-setup"]
# Set-up cell: replaced by scripts/setup_cell.py.

# %% [markdown]
# # The data
#
# A segmentation network learns from pairs: a frame and a mask that gives every pixel its class.
# This chapter presents the polyp data sets the book can use, loads them with the package, shows how
# to augment image and mask together, and measures something that shapes the rest of the book: how
# rare polyp pixels are.
#
# **Audience and goals.** You know what a mask is from [the introduction](01_introduction.ipynb).
# After this chapter you can load any of the supported data sets (or your own folder), check a
# folder for problems, write augmentations that keep mask and image aligned, and say why pixel
# accuracy will flatter our models.
#
# **Running this code.** The `quick` profile reads at most a few dozen frames for the pictures and
# reads the masks of the training split at reduced resolution for the statistics, so the chapter
# runs in well under a minute on a CPU.

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import fcn_tutorial.data as fcn_data
from fcn_tutorial.data import VOID, load_polyp_data

torch.manual_seed(0)

# %% [markdown]
# ## Three polyp data sets and your own
#
# ### CVC-912, the set of the 2017 tutorial
#
# The tutorial this book modernises used 912 colonoscopy frames from 36 patients, collected at a
# hospital in Barcelona and distributed as `polyps_split7.zip`. The split is *by patient*, so that no
# patient appears in two splits: 547 training frames (20 patients), 183 validation frames (8) and 182
# test frames (8). The archive unpacks to
#
# ```text
# polyps_split7/
#   train/images/CVC-612_026.bmp    train/masks2/CVC-612_026.tif   (also masks3/, masks4/)
#   valid/images/...                valid/masks2/...
#   test/images/...                 test/masks2/...
# ```
#
# The frames are BMP files of two sizes (384 x 288 and 574 x 500). `masks2` holds two classes plus a
# third value for the black border around the endoscope's round view, which is *void*: the package
# maps it to `VOID = 255` so that the loss and the metrics skip those pixels. `masks3` and `masks4`
# add classes such as the lumen and the specular highlights; the book uses `masks2`, as the tutorial
# did. The archive is not freely downloadable: the class below explains how to get it and where to
# put it.

# %%
print(fcn_data.Polyps912.__doc__)

# %% [markdown]
# ### Kvasir-SEG, the default
#
# Kvasir-SEG (Jha et al., 2020) is a public set of 1,000 polyp frames with masks drawn by doctors
# at Vestre Viken hospital in Norway. It is free for research and teaching with a citation of the
# paper. Its official archive has a flat layout, the same file name in two folders:
#
# ```text
# kvasir-seg/
#   images/cju0qkwl35piu0993l0dewei2.jpg
#   masks/cju0qkwl35piu0993l0dewei2.jpg
# ```
#
# Two details matter. First, the masks are JPEG files, and JPEG compression blurs the sharp
# black-and-white edge into a few grey values; the loader thresholds them at 128. Second, Kvasir-SEG
# has no official split, so the package makes a deterministic one from the sorted file names, the
# same on every machine.

# %%
print(fcn_data.KvasirSEG.__doc__)

# %% [markdown]
# `load_polyp_data` picks the data for the book: Kvasir-SEG from the cache folder (downloading it
# when it is missing and the network allows), otherwise the synthetic set below, with a flag saying
# which.

# %%
data = load_polyp_data(profile)
if data.synthetic:
    display(Markdown(f"**Note:** the real polyp frames were not found, so this chapter uses the "
                     f"synthetic set instead ({data.reason})."))
print(data.name)

# %%
# NBVAL_CHECK_OUTPUT
for split in ["train", "valid", "test"]:
    print(f"{split:5s}: {len(getattr(data, split)):4d} frames")

# %% [markdown]
# Let us check the JPEG-mask detail on one file. We read the raw mask with Pillow and count its grey
# levels, then compare with the mask the data set returns.

# %%
# NBVAL_CHECK_OUTPUT
import numpy as np
from PIL import Image

image, mask = data.train[0]
raw = np.asarray(Image.open(data.train.mask_paths[0]).convert("L"))
print("raw JPEG mask: ", len(np.unique(raw)), "different grey levels")
print("loaded mask:   ", mask.unique().tolist(), mask.dtype)
print("grey pixels (between 10 and 245):", int(((raw > 10) & (raw < 245)).sum()))

# %% [markdown]
# Dozens of grey levels on disk, but only the two classes after loading. Thresholding at the middle
# is safe here because (as the last line shows) no pixel of the file is truly ambiguous.

# %% [markdown]
# ### Your own folder
#
# Any folder with `images/` and `masks/` holding files of the same names works with
# `SegmentationFolder`. Masks may be PNG, TIFF or JPEG; you say which grey value is which class.
# To show it without touching your disk, we write a few synthetic pairs into a temporary folder and
# load them back.

# %%
import tempfile
from pathlib import Path

from fcn_tutorial.data import SegmentationFolder, make_synthetic_polyps

folder = Path(tempfile.mkdtemp()) / "my-polyps"
make_synthetic_polyps(folder, n_images=6, size=(96, 128), seed=0)
print(sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.png"))[:4], "...")

# %%
# NBVAL_CHECK_OUTPUT
mine = SegmentationFolder(folder)
frame, frame_mask = mine[0]
print(len(mine), "pairs;", "image", tuple(frame.shape), "mask", tuple(frame_mask.shape), frame_mask.unique().tolist())

# %% [markdown]
# ### The synthetic set
#
# The synthetic set is what the book falls back to without real data, and what the tests use: pink
# blobs with bumpy outlines on a reddish, vignetted background, with a void border like CVC-912's. It
# is easy (a good model reaches a high Jaccard quickly), but it exercises every piece of code.

# %%
from fcn_tutorial.plotting import show_pairs

fig = show_pairs(mine, indices=range(3))
plt.show()
plt.close(fig)

# %% [markdown]
# ## Checking a folder: `fcn-tutorial data check`
#
# Before training on a folder, check it. The command lists every problem at once (a missing mask, a
# mask whose size differs from its image, an unreadable file, unexpected labels) rather than stopping
# at the first. Here it is on our small folder after we break two things on purpose:

# %%
(folder / "masks" / sorted((folder / "masks").iterdir())[0].name).unlink()
Image.new("L", (10, 10)).save(sorted((folder / "masks").iterdir())[0])
!cd {folder.parent} && fcn-tutorial data check my-polyps

# %% [markdown]
# Each line names the file and the problem, so that you can fix them all in one pass. On the real
# data the same command reports a clean folder:

# %%
!cd {data.root.parent} && fcn-tutorial data check {data.root.name}

# %% [markdown]
# ## Augmentation: the mask follows the image
#
# With about 500 training frames, a network soon memorises them. Augmentation shows it a slightly
# different version of each frame every epoch. For segmentation there is one rule: every geometric
# change made to the image must be made to the mask too, with nearest-neighbour interpolation so
# that labels stay labels, and pixels that come from outside the frame must be void in the mask.
#
# `torchvision.transforms.v2` does this for us when the mask is wrapped as a `tv_tensors.Mask`: the
# same random parameters are applied to both, and colour changes touch only the image.

# %%
from torchvision import tv_tensors
from torchvision.transforms import v2

example_image, example_mask = data.train[1]
pair = (tv_tensors.Image(example_image), tv_tensors.Mask(example_mask))
augmentations = {
    "random crop": v2.RandomCrop((256, 256), pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: VOID}),
    "horizontal flip": v2.RandomHorizontalFlip(p=1.0),
    "rotation": v2.RandomRotation(30, fill={tv_tensors.Image: 0, tv_tensors.Mask: VOID}),
    "scale": v2.RandomAffine(degrees=0, scale=(0.6, 1.4), fill={tv_tensors.Image: 0, tv_tensors.Mask: VOID}),
    "colour jitter": v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
}

# %%
from fcn_tutorial.plotting import overlay

fig, axes = plt.subplots(1, len(augmentations) + 1, figsize=(10, 2.3), dpi=100)
axes[0].imshow(overlay(*pair))
axes[0].set_title("original", fontsize=9)
for axis, (name, transform) in zip(axes[1:], augmentations.items()):
    axis.imshow(overlay(*transform(pair)))
    axis.set_title(name, fontsize=9)
for axis in axes:
    axis.axis("off")
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# The green outline (the mask) moves, turns and scales with the polyp; grey marks void pixels that
# the rotation and the scaling brought in from outside the frame; the colour jitter changes the
# image only. The package's training preset combines these steps:

# %%
from fcn_tutorial.data.transforms import train_transforms

preset = train_transforms(crop_size=profile.crop_size)
print(preset)

# %% [markdown]
# Applying it several times to the same pair gives a different crop every time, always aligned:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
samples = [preset(*pair) for _ in range(4)]
for augmented_image, augmented_mask in samples:
    print("image", tuple(augmented_image.shape), augmented_image.dtype, "| mask", tuple(augmented_mask.shape), augmented_mask.dtype)

# %%
fig, axes = plt.subplots(1, 4, figsize=(10, 2.6), dpi=100)
for axis, sample in zip(axes, samples):
    axis.imshow(overlay(*sample))
    axis.axis("off")
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# ## Loading in batches
#
# Frames come in different sizes, so training batches are random crops of one size, while validation
# and testing run on whole frames, one at a time (as the 2017 tutorial did). `make_loaders` builds
# the three `DataLoader`s with seeded workers, so a run can be repeated exactly:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.data.loaders import make_loaders

loaders = make_loaders(data, batch_size=4, crop_size=profile.crop_size, num_workers=0, seed=0)
images, masks = next(iter(loaders.train))
print("train batch:", tuple(images.shape), images.dtype, tuple(masks.shape), masks.dtype)
images, masks = next(iter(loaders.valid))
print("valid batch:", images.shape[0], "full-size frame")

# %% [markdown]
# ## Class imbalance: how rare are polyp pixels?
#
# Let us count. Reading every training frame at full resolution would take a while, and counting
# does not need full resolution: Pillow can decode a JPEG at a quarter of its size almost for free
# (`Image.draft`), which changes the fractions only at the boundaries.

# %%
from tqdm.auto import tqdm


def polyp_fraction_of_file(path: Path, reduce: int = 4) -> float:
    """Share of polyp pixels in a Kvasir-SEG mask file, decoded at 1/reduce of its size."""
    with Image.open(path) as file:
        file.draft("L", (file.width // reduce, file.height // reduce))
        pixels = np.asarray(file.convert("L"))
    return float((pixels >= 128).mean())


fractions = np.array([polyp_fraction_of_file(path) for path in tqdm(data.train.mask_paths, desc="masks")])

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(fractions)} training masks")
print(f"polyp pixels over the training split: {fractions.mean():.1%}")
print(f"smallest polyp: {fractions.min():.1%} of its frame, largest: {fractions.max():.1%}")
print(f"frames where the polyp covers under 5%: {(fractions < 0.05).mean():.0%}")

# %%
fig, axis = plt.subplots(figsize=(7, 3), dpi=100)
axis.hist(100 * fractions, bins=40, color="tab:red", alpha=0.8)
axis.axvline(100 * fractions.mean(), color="black", linestyle="--", label=f"mean {fractions.mean():.1%}")
axis.set_xlabel("polyp area (% of the frame)")
axis.set_ylabel("training frames")
axis.legend()
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# About one pixel in seven is polyp; most frames show a polyp covering between a few and a quarter of
# the frame, and a long tail of frames is dominated by one. (Frames are averaged equally here; the
# share of all pixels weights large frames more, but the picture is the same.)
#
# What does this imply? A "model" that answers *background* everywhere is right on about 85% of the
# pixels, without having found a single polyp:

# %%
# NBVAL_CHECK_OUTPUT
print(f"pixel accuracy of predicting background everywhere: {1 - fractions.mean():.1%}")
print("its Jaccard index for the polyp class: 0.0")

# %% [markdown]
# So a high pixel accuracy tells us little. [Chapter 5](05_measuring_segmentation.ipynb) therefore
# measures each class separately with the Jaccard index and the Dice score, which give this lazy model
# the zero it deserves for polyps.

# %% [markdown]
# ## Browsing the data
#
# `fcn_tutorial.widgets.DataBrowser` shows frames with their masks; its static form draws a grid of
# them, which is what this page shows:

# %%
from fcn_tutorial.widgets import DataBrowser

browser = DataBrowser(data.train)
fig = browser.figure(indices=range(6))
plt.show()
plt.close(fig)

# %% [markdown]
# In a running notebook, the next cell opens the interactive version with a slider over all frames
# and a switch between the mask, the outline and the raw frame:

# %% tags=["remove-output"]
browser.widget()

# %% [markdown]
# ## Summary
#
# * CVC-912 (the 2017 set) is split by patient and marks the endoscope's border as void; Kvasir-SEG
#   is public, with JPEG masks thresholded at 128 and a deterministic split; any `images/` + `masks/`
#   folder works through `SegmentationFolder`; a synthetic set stands in when no real data is there.
# * `fcn-tutorial data check` reports every problem of a folder at once.
# * Augmentation must move the mask with the image; `torchvision.transforms.v2` with
#   `tv_tensors.Mask` does so, and fills pixels from outside the frame with `VOID`.
# * Only about one pixel in seven is polyp, so pixel accuracy rewards predicting background.
#
# ## Exercises
#
# 1. **Polyp fraction.** Write `polyp_fraction(mask)`, the share of polyp pixels (class 1) among the
#    pixels that are *not* void. A mask that is all void has no defined fraction: return `nan`.

# %% tags=["exercise"]
def polyp_fraction(mask: torch.Tensor) -> float:
    """Share of polyp pixels among the non-void pixels of an H x W mask."""
    ...  # your code here

# %% tags=["solution", "hide-cell"]
def polyp_fraction(mask: torch.Tensor) -> float:
    """Share of polyp pixels among the non-void pixels of an H x W mask."""
    valid = mask != VOID
    if not valid.any():
        return float("nan")
    return (mask[valid] == 1).float().mean().item()

# %% tags=["check"]
from fcn_tutorial.exercises import check_polyp_fraction

check_polyp_fraction(polyp_fraction)

# %% [markdown]
# 2. **A joint random crop.** Write `random_crop(image, mask, size, generator)` that cuts the same
#    random `size x size` window out of both, padding with zeros (image) and `VOID` (mask) when the
#    frame is smaller than the window. Do it with plain tensor indexing, without torchvision.

# %% tags=["exercise"]
def random_crop(image: torch.Tensor, mask: torch.Tensor, size: int, generator: torch.Generator):
    """The same random size x size window of a 3 x H x W image and its H x W mask."""
    ...  # your code here

# %% tags=["solution", "hide-cell"]
def random_crop(image: torch.Tensor, mask: torch.Tensor, size: int, generator: torch.Generator):
    """The same random size x size window of a 3 x H x W image and its H x W mask."""
    height, width = mask.shape
    pad_h, pad_w = max(size - height, 0), max(size - width, 0)
    image = torch.nn.functional.pad(image, (0, pad_w, 0, pad_h), value=0.0)
    mask = torch.nn.functional.pad(mask, (0, pad_w, 0, pad_h), value=VOID)
    top = int(torch.randint(mask.shape[0] - size + 1, (1,), generator=generator))
    left = int(torch.randint(mask.shape[1] - size + 1, (1,), generator=generator))
    return image[:, top:top + size, left:left + size], mask[top:top + size, left:left + size]

# %% tags=["check"]
from fcn_tutorial.exercises import check_random_crop

check_random_crop(random_crop)

# %% [markdown]
# 3. Compute the polyp fraction over the training split at full resolution (no `draft`). How far is
#    it from the quarter-size estimate, and how much longer does it take?
# 4. Kvasir-SEG frames come in sizes from about 330 to 1,920 pixels wide. Plot the distribution of
#    frame widths in the training split. What crop size would you choose for training, and why?
