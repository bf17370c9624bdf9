# ---
# jupyter:
#   # Chapter 3, "The data": the source of book/03_data.ipynb.
#   # Sync the notebook with `python book/_src/build.py 03`; see CONTRIBUTING.md.
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

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
# **Running this code.** The chapter decodes a few dozen frames for the pictures and the masks of
# the training split for the statistics; it runs in well under a minute on a CPU with either
# profile: it does the same work in both.

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ["jpeg"]  # the figures are photographs: JPEG keeps the page light
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from PIL import Image

from fcn_tutorial.data import VOID, KvasirSEG, Polyps912, load_polyp_data

# %% [markdown]
# ## Three polyp data sets and your own
#
# ### CVC-912, the set of the 2017 tutorial
#
# The tutorial this book modernises used 912 colonoscopy frames from 36 patients, collected at a
# hospital in Barcelona, published with the EndoScene benchmark {cite}`vazquez2016benchmark` and
# distributed as `polyps_split7.zip`, which the tutorial read with the `dataset_loaders` library
# {cite}`visin2017loaders`. The split is *by patient*, so that no
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
# add more classes; the book uses `masks2`, as the tutorial did. The archive is on Google Drive, not on
# a public web address: `fcn-tutorial data download polyps912` fetches it with the file id that the 2017
# tutorial's set-up script gives (it needs the `gdown` package). The class's documentation explains the
# options:

# %%
print(Polyps912.__doc__)

# %% [markdown]
# ### Kvasir-SEG, the default
#
# Kvasir-SEG {cite}`jha2020kvasir` is a public set of 1,000 polyp frames with masks drawn under the
# supervision of doctors in Norway. It is free for research and teaching with a citation of the
# paper; commercial use needs the authors' permission. Its official archive has a flat layout, the
# same file name in two folders:
#
# ```text
# kvasir-seg/
#   images/cju0qkwl35piu0993l0dewei2.jpg
#   masks/cju0qkwl35piu0993l0dewei2.jpg
# ```
#
# Two details matter. First, the masks are JPEG files, and JPEG compression blurs the sharp
# black-and-white edge into a few grey values; the loader thresholds them at 128. Second, Kvasir-SEG
# has no official split, so the package makes a deterministic one: a hash of each file name sends it
# to training (80%), validation (10%) or test (10%). The split is the same on every machine, and a
# frame keeps its split when other frames are added or removed. The names of each split are written
# to text files (`train.txt`, `val.txt`, `test.txt`) in the cache folder, so that you can read them.

# %%
print(KvasirSEG.__doc__)

# %% [markdown]
# `load_polyp_data` picks the data for the book: Kvasir-SEG from the data folder (downloading it
# when it is missing and the network allows), otherwise the synthetic set described below, with a
# flag saying which.

# %%
data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note:** the real polyp frames were not found, so this chapter uses the "
                     f"synthetic set instead ({data.reason})."))
print("data set:", data.name)

# %% [markdown]
# How many frames each split holds depends on your copy: with the official download of 1,000 pairs
# the hash gives about 800, 100 and 100, and a copy with fewer pairs gives proportionally fewer. This site was
# built from 801 of the 1,000 pairs: the other 199 are kept aside to check the book's figures on frames that
# nobody tuned on. Your numbers:

# %%
for split in ["train", "val", "test"]:
    print(f"{split:5s}: {len(getattr(data, split)):4d} frames")

# %% [markdown]
# Whatever the copy, the split keeps its promises: no frame is in two splits, the training split
# holds about 80% of the frames, and each frame sits in the split that the hash of its name gives,
# `hash_split(name)`, the same on every machine:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.data import hash_split

names = {split: set(getattr(data, split).names) for split in ["train", "val", "test"]}
total = sum(len(split_names) for split_names in names.values())
print("no frame in two splits:", not (names["train"] & names["val"] or names["train"] & names["test"]
                                      or names["val"] & names["test"]))
print("training split between 75% and 85% of the frames:", 0.75 <= len(names["train"]) / total <= 0.85)
if data.name == "kvasir-seg":
    print("every frame in the split of its name:",
          all(hash_split(name) == split for split, split_names in names.items() for name in split_names))
for name in ["cju0qkwl35piu0993l0dewei2", "cju0qx73cjw570799j4n5cjze", "cju0sxqiclckk08551ycbwhno"]:
    print(f"hash_split({name!r}) = {hash_split(name)!r}")

# %% [markdown]
# For Kvasir-SEG, the split files sit next to the other cached files; each lists the frame names of
# one split after two comment lines:

# %%
if data.name == "kvasir-seg":
    split_file = data.train.split_dir / "train.txt"
    print(split_file.name, "->", split_file.read_text().splitlines()[2:5], "...")

# %% [markdown]
# Let us check the JPEG-mask detail on one file. We read the raw mask with Pillow and count its grey
# levels, then compare with the mask the data set returns.

# %%
image, mask = data.train[0]
raw = np.asarray(Image.open(data.train.mask_paths[0]).convert("L"))
print("raw mask file:", len(np.unique(raw)), "different grey levels")
print("loaded mask:  ", mask.unique().tolist(), mask.dtype)
print("raw pixels strictly between 10 and 245:", int(((raw > 10) & (raw < 245)).sum()))

# %% [markdown]
# Many grey levels on disk, but only the two classes after loading. Thresholding in the middle is
# safe here because, as the last line shows, no pixel of the file is truly ambiguous: the grey values
# all sit close to black or to white.

# %% [markdown]
# ### Your own folder
#
# Any folder with `images/` and `masks/` holding files of the same names works with
# `SegmentationFolder`. Masks may be PNG, TIFF, BMP or JPEG; you say which value is which class with
# `value_to_class`. Let us pretend that an annotation tool gave us a dozen frames as JPEG files and
# their masks as PNG files with 0 for background, 255 for polyp and 128 for pixels nobody could
# decide on: a thin band along each polyp's outline. We write such a folder into a temporary directory,
# from validation frames of our data:

# %%
import tempfile
from pathlib import Path

import torch.nn.functional as F
from torchvision.transforms.v2.functional import to_pil_image

workspace = Path(tempfile.mkdtemp(prefix="fcn-tutorial-"))
# %cd -q {workspace}
Path("my-polyps/images").mkdir(parents=True)
Path("my-polyps/masks").mkdir(parents=True)
grey_level = torch.tensor([0, 255])  # of background and polyp
for index in range(12):
    frame, frame_mask = data.val[index]
    polyp = (frame_mask == 1).float()[None, None]
    grown = F.max_pool2d(polyp, 5, stride=1, padding=2)
    shrunk = -F.max_pool2d(-polyp, 5, stride=1, padding=2)
    undecided = (grown != shrunk)[0, 0] | (frame_mask == VOID)  # a 5-pixel band along the outline
    grey = torch.where(undecided, 128, grey_level[frame_mask.clamp(max=1)])
    to_pil_image(frame).save(f"my-polyps/images/frame{index:02d}.jpg", quality=95)
    to_pil_image(grey.to(torch.uint8)).save(f"my-polyps/masks/frame{index:02d}.png")
print(sorted(str(path) for path in Path("my-polyps").rglob("frame00.*")))

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.data import SegmentationFolder

mine = SegmentationFolder("my-polyps", value_to_class={0: 0, 255: 1, 128: VOID})
frame, frame_mask = mine[0]
print(len(mine), "pairs, classes", mine.class_names)
print("first pair: 3-channel image of its mask's size:",
      frame.shape[0] == 3 and frame.shape[1:] == frame_mask.shape,
      "| labels", frame_mask.unique().tolist())

# %% [markdown]
# A mask value that the mapping does not mention (a stray 200 left by a resizing tool, say) is an
# error that names the file, never a silently wrong label.
#
# ### Checking a folder: `fcn-tutorial data check`
#
# Before training on a folder, check it. In a terminal, `fcn-tutorial data check FOLDER` reads every
# pair and lists every problem at once (a missing mask, a mask whose size differs from its image, an
# unreadable file, unexpected values) rather than stopping at the first; on a clean folder it prints
# statistics instead:
#
# ```bash
# fcn-tutorial data check my-polyps
# ```
#
# The command prints the report of `fcn_tutorial.data.check_folder` and exits with code 1 when there
# are problems. It reads the masks as every command does: 0 is background and 255 polyp, unless the folder
# says otherwise in a file `mask_values.json` beside `images/`. Ours holds 128s too, so we write that file
# with the mapping we gave `SegmentationFolder`; from then on `data check`, `train --data my-polyps`,
# `evaluate` and `threshold` all read 128 as void. In the notebook we call the function directly:

# %%
import json

from fcn_tutorial.data import check_folder

Path("my-polyps/mask_values.json").write_text(json.dumps({"values": {"0": 0, "128": "void", "255": 1}}))
report = check_folder("my-polyps", progress=False)
print(report)

# %% [markdown]
# Now we break two things on purpose: we delete one mask and replace another with a picture of the
# wrong size.

# %%
Path("my-polyps/masks/frame03.png").unlink()
Image.new("L", (64, 48)).save("my-polyps/masks/frame07.png")
report = check_folder("my-polyps", progress=False)
print(report)
print("exit code of the command:", 0 if report.ok else 1)
# %cd -q -

# %% [markdown]
# Each line names the file and the problem, so that you can fix them all in one pass, and the exit
# code lets a script stop before it trains on a broken folder. (Run the command on the whole
# Kvasir-SEG folder in a terminal: it reads all the pairs and reports their sizes and polyp areas.)
#
# ### The synthetic set
#
# The synthetic set is what the book falls back to without real data, and what the package's tests
# use. It is written in the CVC-912 layout, void border included, so `Polyps912` reads it. Its frames
# imitate colonoscopy (folds, vessels, highlights, a dark lumen) with one or two smooth polyps whose
# colour matches the mucosa, so that a network has to learn shape and shading. It is much easier
# than real frames, but it exercises every piece of code.

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.data import make_synthetic_polyps

synthetic_root = make_synthetic_polyps(workspace / "synthetic", n_train=4, n_valid=0, n_test=0, seed=0,
                                       progress=False)
synthetic = Polyps912(synthetic_root, "train")
frame, frame_mask = synthetic[0]
print(len(synthetic), "frames of", tuple(frame.shape), "| labels:", frame_mask.unique().tolist())

# %% mystnb={"image": {"alt": "Four synthetic frames, each with a smooth blob as its polyp, and their masks"}}
from fcn_tutorial.plotting import show_pairs

fig = show_pairs(synthetic, indices=range(4))
plt.show()
plt.close(fig)

# %% [markdown]
# Red marks the polyps and grey the void border outside the endoscope's view, which neither the loss
# nor the metrics will count.

# %% [markdown]
# ## Augmentation: the mask follows the image
#
# With a few hundred training frames, a network soon memorises them. Augmentation shows it a
# slightly different version of each frame every epoch. For segmentation there is one rule: every
# geometric change made to the image must be made to the mask too, with nearest-neighbour
# interpolation so that labels stay labels, and pixels that come from outside the frame must be
# void in the mask.
#
# `torchvision.transforms.v2` does this for us when the mask is a `tv_tensors.Mask`, as our data sets
# return it: the same random parameters are applied to both, and colour changes touch only the image.

# %%
from torchvision import tv_tensors
from torchvision.transforms import v2

FILL = {tv_tensors.Image: 0.0, tv_tensors.Mask: VOID}  # what pixels from outside the frame become
pair = data.train[1]  # a tv_tensors.Image and a tv_tensors.Mask
augmentations = {
    "random crop": v2.RandomCrop((256, 256), pad_if_needed=True, fill=FILL),
    "horizontal flip": v2.RandomHorizontalFlip(p=1.0),
    "rotation": v2.RandomRotation(30, fill=FILL),
    "scale": v2.RandomAffine(degrees=0, scale=(0.6, 1.4), fill=FILL),
    "colour jitter": v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
}

# %% mystnb={"image": {"alt": "A frame with its polyp mask drawn over it, then the same pair after a random crop, a horizontal flip, a rotation, a zoom and a colour change: the mask moves with the frame every time"}}
from fcn_tutorial.plotting import overlay

torch.manual_seed(3)
fig, axes = plt.subplots(1, len(augmentations) + 1, figsize=(10, 2.2), dpi=100)
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
# The red mask moves, turns and scales with the polyp; grey marks the void pixels that the rotation
# and the zoom brought in from outside the frame; the colour jitter changes the image only. The
# package's `train_transforms` chains such steps in a sensible order (resize, rotate, zoom and crop in one
# step (`RandomZoomCrop`: only the window that the crop keeps is resized), flip, colour; `transpose=0.5` adds a swap of rows and columns, which shows a square crop in all
# eight orientations). Here we switch on all but the transpose, on small frames so that the pictures are quick
# to draw (the shorter side resized to 128 pixels, crops of 112):

# %%
from fcn_tutorial.data import eval_transforms, train_transforms

preset = train_transforms(resize=128, crop_size=112, hflip=0.5, vflip=0.5,
                          rotation=15, scale=(0.75, 1.25), color_jitter=0.2)
print(preset)

# %% [markdown]
# Applied several times to the same pair, it gives a different view every time, always aligned:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
samples = [preset(*pair) for _ in range(4)]
for augmented_image, augmented_mask in samples:
    print("image", tuple(augmented_image.shape), augmented_image.dtype,
          "| mask", tuple(augmented_mask.shape), augmented_mask.dtype)

# %% mystnb={"image": {"alt": "Four augmented samples of one training pair, each with its polyp mask drawn over the frame"}}
fig, axes = plt.subplots(1, 4, figsize=(8, 2.2), dpi=100)
for axis, sample in zip(axes, samples):
    axis.imshow(overlay(*sample))
    axis.axis("off")
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# A picture can hide a misalignment of a pixel or two, so let us measure it. We make up a pair whose
# colours give its labels away: a red disc (the "polyp", class 1) on a blue background (class 0).
# After any augmentation a pixel's colour still says what its label must be: red for polyp, blue for
# background, and grey for the fill brought in from outside the frame (black, greyed by the colour
# jitter), which must be void. We pass the pair through `preset` 20 times and count the pixels whose
# label matches their colour; only a thin line along each edge, where the image is interpolated,
# may disagree.

# %%
# NBVAL_CHECK_OUTPUT
rows, columns = torch.meshgrid(torch.arange(150), torch.arange(200), indexing="ij")
disc = ((rows - 60) ** 2 + (columns - 125) ** 2 < 35**2).long()  # off centre, so flips move it
red_on_blue = torch.stack([0.1 + 0.8 * disc, torch.full((150, 200), 0.3), 0.9 - 0.8 * disc])

torch.manual_seed(0)
labels_seen, worst = set(), 1.0
for _ in range(20):
    augmented_image, augmented_mask = preset(red_on_blue, disc)
    red, blue = augmented_image[0], augmented_image[2]
    label_of_colour = torch.full_like(augmented_mask, -1)  # -1: an edge pixel, between two colours
    label_of_colour[red > blue + 0.2] = 1
    label_of_colour[blue > red + 0.2] = 0
    label_of_colour[(red - blue).abs() < 0.05] = VOID
    labels_seen |= set(augmented_mask.unique().tolist())
    worst = min(worst, (label_of_colour == augmented_mask).float().mean().item())
print("labels seen in the augmented masks:", sorted(labels_seen))
print("in every view, at least 97% of the pixels have the label of their colour:", worst >= 0.97)

# %% [markdown]
# ## Loading in batches
#
# Frames come in different sizes, so training batches are random crops of one size, while validation
# and testing run on whole frames, one at a time (as the 2017 tutorial did). We ask
# `load_polyp_data` for the splits with their transforms, and `make_loaders` builds the three
# `DataLoader`s. The augmentation of each frame is seeded by the frame and the epoch, so that a run
# can be repeated exactly, with any number of worker processes:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.data import make_loaders

augmented = load_polyp_data(train_transform=preset, eval_transform=eval_transforms(resize=128))
loaders = make_loaders(augmented.train, augmented.val, augmented.test,
                       batch_size=4, num_workers=0, seed=0)
images, masks = next(iter(loaders.train))
print("training batch:  ", tuple(images.shape), images.dtype, "|", tuple(masks.shape), masks.dtype)
images, masks = next(iter(loaders.val))
print("validation batch:", tuple(images.shape[:2]), "x height x width of one whole frame")

# %% [markdown]
# ## Class imbalance: how rare are polyp pixels?
#
# Let us count. We only need the masks, and not even at full resolution: Pillow can decode a JPEG
# at a quarter of its size at a fraction of the cost (`Image.draft`), which changes the counts only
# along the boundaries. The data set's own table (`lookup`) turns the file's values into classes, and
# `np.bincount` counts the pixels of each class in every frame, leaving void pixels out. (Many tiny
# arrays are NumPy's home ground; PyTorch pays off on big tensors.)

# %%
def reduced_labels(path: Path, lookup: np.ndarray, reduce: int = 4) -> np.ndarray:
    """The class of each pixel of a mask file; JPEG files are decoded at 1/reduce of their size."""
    with Image.open(path) as file:
        file.draft("L", (file.width // reduce, file.height // reduce))  # only JPEG files take the hint
        return lookup[np.asarray(file, dtype=np.uint8)]


train = data.train
lookup = train.lookup.numpy()  # file value -> class (or VOID)
counts = np.zeros((len(train), train.n_classes), dtype=np.int64)  # pixels per frame and class
for index, path in enumerate(train.mask_paths):
    labels = reduced_labels(path, lookup)
    counts[index] = np.bincount(labels[labels != VOID], minlength=train.n_classes)

# %%
fractions = counts[:, 1] / counts.sum(axis=1)  # the polyp share of each frame
overall = counts[:, 1].sum() / counts.sum()  # the polyp share of all training pixels
print(f"{len(train)} training masks, {counts.sum() / 1e6:.1f} million pixels counted at reduced size")
print(f"polyp pixels over the training split: {overall:.1%}")
print(f"polyp share per frame: mean {fractions.mean():.1%}, median {np.median(fractions):.1%}, "
      f"smallest {fractions.min():.1%}, largest {fractions.max():.1%}")
print(f"frames where the polyp covers under 5%: {(fractions < 0.05).mean():.0%}")

# %% mystnb={"image": {"alt": "Histogram of the polyp's share of each training frame, in percent, with the mean marked"}}
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
# Roughly one pixel in seven is polyp. Most frames show a polyp that covers between a few percent and
# a quarter of the frame, a long tail of frames is dominated by one, and about one frame in five has
# a polyp smaller than 5% of the picture: the hard cases of
# [chapter 2](02_classification_to_segmentation.ipynb). (The share over all pixels weights large
# frames more than the mean over frames does; both tell the same story.)
#
# The exact numbers depend on your copy of the data; what the rest of the book relies on does not:

# %%
# NBVAL_CHECK_OUTPUT
print("polyp pixels are a minority of the training pixels:", bool(overall < 0.5))
print("some polyps cover under 5% of their frame:", bool((fractions < 0.05).any()))

# %% [markdown]
# What does this imply? A "model" that answers *background* everywhere is right on most pixels,
# without having found a single polyp:

# %%
print(f"pixel accuracy of predicting background everywhere: {1 - overall:.1%}")
print("its Jaccard index for the polyp class: 0.0")

# %% [markdown]
# So a high pixel accuracy tells us little. [Chapter 5](05_measuring_segmentation.ipynb) therefore
# measures each class separately with the Jaccard index and the Dice score, which give this lazy model
# the zero it deserves for polyps.

# %% [markdown]
# ## Browsing the data
#
# `fcn_tutorial.widgets.DataBrowser` shows frames with their masks. Its static form draws a few of
# them, which is what this page shows:

# %% mystnb={"image": {"alt": "Four training frames with their polyp masks drawn over them"}}
from fcn_tutorial.widgets import DataBrowser

browser = DataBrowser(data.train)
fig = browser.figure(indices=range(2, 6))
plt.show()
plt.close(fig)

# %% [markdown]
# In a running notebook, the next cell opens the interactive version, with a slider over all frames,
# a switch between the overlay, the outline, the mask and the raw frame, and the overlay's strength:

# %% tags=["remove-output"]
browser.widget()

# %% [markdown]
# ## Summary
#
# * CVC-912 (the 2017 set) is split by patient and marks the endoscope's border as void; Kvasir-SEG
#   is public, with JPEG masks thresholded at 128 and a deterministic hash split; any `images/` +
#   `masks/` folder works through `SegmentationFolder`; a synthetic set stands in when no real data
#   is there.
# * `fcn-tutorial data check` reports every problem of a folder at once.
# * Augmentation must move the mask with the image; `torchvision.transforms.v2` with
#   `tv_tensors.Mask` does so, and fills pixels from outside the frame with `VOID`.
# * Only about one pixel in seven is polyp, so pixel accuracy rewards predicting background.
#
# ## Exercises
#
# 1. **Polyp fraction** (2 points). Write `polyp_fraction(mask)`, the share of polyp pixels (class 1) among
#    the pixels that are *not* void. A mask that is all void has no such share: return `nan`.

# %% nbgrader={"grade_id": "polyp_fraction", "solution": true}
def polyp_fraction(mask: torch.Tensor) -> float:
    """Share of polyp pixels among the non-void pixels of an H x W mask."""
    ### BEGIN SOLUTION
    counted = mask != VOID
    if not counted.any():
        return float("nan")
    return (mask[counted] == 1).float().mean().item()
    ### END SOLUTION


# %% nbgrader={"grade_id": "polyp_fraction_test", "grade": true, "points": 2}
from fcn_tutorial.exercises import check_polyp_fraction

check_polyp_fraction(polyp_fraction)
### BEGIN HIDDEN TESTS
_masks = torch.randint(0, 3, (5, 13, 17), generator=torch.Generator().manual_seed(5))
for _mask in _masks.masked_fill(_masks == 2, VOID):
    _want = ((_mask == 1).sum() / (_mask != VOID).sum()).item()
    assert abs(float(polyp_fraction(_mask)) - _want) < 1e-6, f"polyp_fraction gave {polyp_fraction(_mask)}, not {_want}"
### END HIDDEN TESTS

# %% [markdown]
# 2. **A joint random crop** (3 points). Write `random_crop(image, mask, size, generator)` that cuts the same
#    random `size x size` window out of a `3 x H x W` image and its `H x W` mask, padding with 0
#    (image) and `VOID` (mask) at the bottom and right when the frame is smaller than the window.
#    Every position must be possible, including the last one (the 2017 loader never picked it).
#    Use plain tensor indexing and `torch.randint(..., generator=generator)`, no torchvision.

# %% nbgrader={"grade_id": "random_crop", "solution": true}
def random_crop(image: torch.Tensor, mask: torch.Tensor, size: int, generator: torch.Generator):
    """The same random size x size window of a 3 x H x W image and its H x W mask."""
    ### BEGIN SOLUTION
    pad_bottom, pad_right = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
    image = torch.nn.functional.pad(image, (0, pad_right, 0, pad_bottom), value=0.0)
    mask = torch.nn.functional.pad(mask, (0, pad_right, 0, pad_bottom), value=VOID)
    top = int(torch.randint(mask.shape[0] - size + 1, (1,), generator=generator))
    left = int(torch.randint(mask.shape[1] - size + 1, (1,), generator=generator))
    return image[:, top:top + size, left:left + size], mask[top:top + size, left:left + size]
    ### END SOLUTION


# %% nbgrader={"grade_id": "random_crop_test", "grade": true, "points": 3}
from fcn_tutorial.exercises import check_random_crop

check_random_crop(random_crop)
### BEGIN HIDDEN TESTS
_image = torch.rand(3, 40, 30, generator=torch.Generator().manual_seed(3))
_mask = (_image[0] > 0.5).long()
for _size in [30, 40, 45]:
    _crop_image, _crop_mask = random_crop(_image, _mask, _size, torch.Generator().manual_seed(_size))
    assert tuple(_crop_image.shape) == (3, _size, _size) and tuple(_crop_mask.shape) == (_size, _size), _size
    assert torch.equal((_crop_image[0] > 0.5).long()[_crop_mask != VOID], _crop_mask[_crop_mask != VOID]), _size
assert (_crop_mask[40:] == VOID).all() and (_crop_mask[:, 30:] == VOID).all(), "pad the mask with VOID"
### END HIDDEN TESTS

# %% [markdown]
# Open questions: write your answer in the cell below each one.
#
# 3. Count the polyp pixels again at full resolution, with `fcn_tutorial.data.read_mask`. How far
#    is the result from the quarter-size estimate, and how much longer does it take?

# %% [markdown] nbgrader={"grade_id": "full_resolution_count", "solution": true, "grade": true, "points": 1}
# *Model answer.* Within a few tenths of a percentage point: shrinking a mask moves pixels along the outline
# from one class to the other in both directions, so the share barely changes. Reading and decoding 16 times
# as many pixels takes several times longer, for an answer that is no more useful.

# %% [markdown]
# 4. Kvasir-SEG frames range from about 330 to 1,920 pixels in width. Plot the distribution of frame
#    sizes in the training split (the `fcn-tutorial data check` report lists the most common ones).
#    What crop size would you train with, and what happens to the largest frames?

# %% [markdown] nbgrader={"grade_id": "frame_sizes", "solution": true, "grade": true, "points": 1}
# *Model answer.* Most frames are around 530 x 620 and a few are much larger. Crop at a size near the common
# frame's short side after resizing (e.g. resize to about 512 and crop 320 to 448). Without resizing, a crop
# of the largest frames covers a small part of a polyp that fills the frame, so the network never sees the
# polyp's outline at the scale of the other frames; resize first.

# %% [markdown]
# 5. Rotate a frame by 30 degrees with `v2.RandomRotation(30)` but *without* `fill`. What label do the
#    new corner pixels of the mask get, and why would that teach the network something false?

# %% [markdown] nbgrader={"grade_id": "rotation_fill", "solution": true, "grade": true, "points": 1}
# *Model answer.* They get 0, background: the default fill. The corners lie outside the photograph (black in
# the image), so nobody labelled them; calling them background teaches the network that black corners are
# tissue without a polyp, and penalises any other prediction there. Filling the mask with `VOID` makes the
# loss and the metrics skip them.
