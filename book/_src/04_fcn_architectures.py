# ---
# jupyter:
#   # Chapter 4, "FCN-32s, FCN-16s and FCN-8s": the source of book/04_fcn_architectures.ipynb.
#   # Sync the notebook with `python book/_src/build.py 04`; see CONTRIBUTING.md.
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["colab-setup"]
# Set-up cell: written by scripts/setup_cell.py

# %% [markdown]
# # FCN-32s, FCN-16s and FCN-8s
#
# [The previous chapters](02_classification_to_segmentation.ipynb) turned a classifier into a network that
# outputs a map of class scores. This chapter builds the three Fully Convolutional Networks of Long, Shelhamer
# and Darrell {cite}`long2015fcn` piece by piece, follows the shape of the data through each of them, and explains
# the two details that puzzle most readers: the padding of 100 pixels in the first layer (and the crops that undo
# it), and the upsampling layers (bilinear, learned, or both?).
# It is written for readers who know convolutions and pooling and have seen a VGG-style classifier.
#
# **Goals.** After this chapter you can
#
# * name the parts of FCN-32s, FCN-16s and FCN-8s and say what each skip connection adds;
# * follow the height and width of a $288 \times 384$ frame through every layer;
# * explain why the first convolution pads by 100 and compute the crops that undo it;
# * compute the output size of a transposed convolution and build its bilinear initial kernel;
# * compare the presets of `fcn_tutorial.models` by parameters and by floating-point operations.
#
# **Running this code.** No training happens here. The cells build full-size networks (about 134 million
# parameters) and push a few single images through them, which takes under a minute on a laptop CPU.

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from matplotlib.colors import ListedColormap

from fcn_tutorial.models import bilinear_kernel, build_model, count_flops, crop_offsets, summary

torch.manual_seed(0)
plt.rcParams["figure.dpi"] = 100

# %% [markdown]
# The figures use a real frame of Kvasir-SEG (see [the data chapter](03_data.ipynb)), resized to
# $288 \times 384$, the size of the CVC-612 frames that the original tutorial used.

# %%
from fcn_tutorial.data import load_polyp_data

data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note: synthetic frames.** The real polyp data is not available here "
                     f"({data.reason})."))
image, mask = data.val[0]
frame = F.interpolate(image[None], size=(288, 384), mode="bilinear", antialias=True)[0].clamp(0, 1)
polyp = F.interpolate((mask == 1).float()[None, None], size=(288, 384), mode="nearest")[0, 0]
print(f"{data.name}: frame {data.val.names[0]}, {tuple(image.shape[-2:])} "
      f"resized to {tuple(frame.shape[-2:])}")

# %% [markdown]
# Two tools do most of the work in this chapter. `summary(model, input_size)` lists every layer with the shape
# it returns, its parameters and its floating-point operations (FLOPs); `crop_offsets(model, input_size)`
# reports where each crop cuts. Both push the input through the model on PyTorch's **meta device**, where
# tensors have a shape but no data, so they cost nothing even for a 134-million-parameter network. We also build
# the big networks there (`with torch.device("meta")`): their layers and parameter counts are real, but no
# memory is allocated and no weights are initialised, which keeps this chapter fast.
#
# ## The shared backbone
#
# All three FCNs start with the same downsampling path, VGG16 {cite}`simonyan2015vgg` read as a fully
# convolutional network. Five
# stages of $3 \times 3$ convolutions, each ended by a $2 \times 2$ max pooling that halves the height and
# width; then VGG's two fully connected layers, rewritten as convolutions: `fc6` is a $7 \times 7$ convolution
# with 4096 filters (it sees a $7 \times 7$ window of the pool5 map, exactly what the classifier saw), `fc7` a
# $1 \times 1$ convolution with 4096 filters. Nothing in it depends on the input size any more.
#
# ## FCN-32s: score, then upsample 32 times
#
# FCN-32s adds two layers to the backbone: `score_fr`, a $1 \times 1$ convolution from the 4096 fc7 channels to
# one score per class, and `upscore32`, a transposed convolution that enlarges the score map 32 times. Here is
# every layer for a $288 \times 384$ frame:

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    fcn32s = build_model("fcn32s", n_classes=2, preset="paper")
print(summary(fcn32s, (288, 384)))

# %% [markdown]
# Read the output-shape column from top to bottom:
#
# * `conv1_1` returns $486 \times 582$, not $288 \times 384$: it pads the frame by 100 pixels on every side
#   (more on this below).
# * Every pooling halves the map (rounding up in the paper's Caffe layers): 243, 122, 61, 31, 16 rows.
# * `fc6`, the unpadded $7 \times 7$ convolution, trims 6 rows and columns: the fc7 map is $10 \times 13$,
#   one score vector for each $32 \times 32$ patch of the padded input.
# * `upscore32` turns $10 \times 13$ into $352 \times 448$, and the final crop cuts the $288 \times 384$
#   window that lies on top of the frame.
#
# Almost all of the 134 million parameters sit in `fc6` (103 million) and `fc7` (17 million). The 205 billion
# FLOPs are spread over the whole backbone: each pooling quarters the map while the next stage doubles the
# channels, so most $3 \times 3$ convolutions cost about 21 billion FLOPs, and `fc6` adds 27 billion. The head
# itself is tiny.
#
# ## FCN-16s: add the pool4 skip
#
# Upsampling 32 times in one step cannot place a boundary more finely than the 32-pixel grid of fc7. FCN-16s
# borrows detail from an earlier, finer map. It upsamples the fc7 scores only 2 times (`upscore2`), scores
# the pool4 map (stride 16) with its own $1 \times 1$ convolution (`score_pool4`), crops the two maps to a
# common size, adds them, and upsamples the sum 16 times. Only the head differs from FCN-32s, so we print the
# layers after the backbone:

# %%
# NBVAL_CHECK_OUTPUT
def print_head(model, input_size):
    """The rows of summary() that belong to the head (and the three backbone maps it reads)."""
    for row in summary(model, input_size):
        read_by_the_head = ("backbone.pool3", "backbone.pool4", "backbone.fc7")
        if not row.name.startswith("backbone.") or row.name in read_by_the_head:
            shape = " x ".join(map(str, row.output_shape[1:]))
            print(f"{row.name:22} {row.type:16} {shape}")


with torch.device("meta"):
    fcn16s = build_model("fcn16s", n_classes=2, preset="paper")
print_head(fcn16s, (288, 384))

# %% [markdown]
# The pool4 scores ($31 \times 37$) are larger than the upsampled fc7 scores ($22 \times 28$) because of the
# padding, so the pool4 map is cropped at offset 5 before the sum. The sum carries both the context of fc7 and
# the finer position information of pool4.
#
# ## FCN-8s: add the pool3 skip
#
# FCN-8s repeats the trick once more: the fused stride-16 scores are upsampled 2 times (`upscore_pool4`), added
# to the scores of pool3 (stride 8, cropped at offset 9), and the sum is upsampled 8 times.

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    fcn8s = build_model("fcn8s", n_classes=2, preset="paper")
print_head(fcn8s, (288, 384))

# %% [markdown]
# The whole network in one picture. `fcn_tutorial.diagrams.draw_fcn8s` draws it from the model itself (the
# sizes are those of `summary`, the crops those of `crop_offsets`), so the figure always matches the code.
# Each box is a map, labelled channels x height x width and its stride; the blue row is VGG16, the orange row
# the three $1 \times 1$ score layers, the green row the upsampling path with its two sums.

# %% mystnb={"image": {"alt": "Diagram of FCN-8s on a 288 x 384 frame with the size of every map: the downsampling path, the score layers, the crops and the two sums of the upsampling path"}}
from fcn_tutorial.diagrams import draw_fcn8s

fig = draw_fcn8s((288, 384), model=fcn8s)
plt.show()
plt.close(fig)

# %% [markdown]
# The three score maps that FCN-8s fuses have strides 32, 16 and 8: one score vector per $32 \times 32$,
# $16 \times 16$ or $8 \times 8$ block of the frame. What can a map of each stride express? Average the polyp
# mask over such blocks and call a block "polyp" when most of it is:

# %% mystnb={"image": {"alt": "The frame with the polyp drawn as blocks of 32, 16 and 8 pixels: only the 8-pixel blocks follow the polyp's outline"}}
fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
for ax, stride in zip(axes, [32, 16, 8]):
    blocks = F.avg_pool2d(polyp[None, None], kernel_size=stride, ceil_mode=True)
    blocky = F.interpolate((blocks > 0.5).float(), scale_factor=stride, mode="nearest")[0, 0, :288, :384]
    ax.imshow(frame.permute(1, 2, 0))
    ax.imshow(np.ma.masked_equal(blocky.numpy(), 0), cmap=ListedColormap(["#2a9d8f"]), alpha=0.6)
    ax.contour(polyp, levels=[0.5], colors="yellow", linewidths=1)
    ax.set_title(f"stride {stride}: {blocks.shape[-2]} x {blocks.shape[-1]} blocks")
    ax.set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# The true outline is yellow, the best that a map of each stride can do is green. At stride 32 the polyp becomes
# a handful of blocks; at stride 8 the staircase follows the outline closely. FCN-32s only has the first; the
# skips of FCN-16s and FCN-8s bring in the finer grids.
#
# A real forward pass confirms that the network returns one score per class and pixel at the input's size,
# whatever that size is. A narrow network (`width=0.125`, one eighth of the channels) keeps it quick:

# %%
# NBVAL_CHECK_OUTPUT
small = build_model("fcn8s", n_classes=2, preset="paper", width=0.125).eval()
with torch.no_grad():
    for height, width in [(288, 384), (500, 574), (97, 131)]:
        logits = small(torch.rand(1, 3, height, width))
        print(f"input 1 x 3 x {height} x {width} -> logits {' x '.join(map(str, logits.shape))}")

# %% [markdown]
# ## Why the first convolution pads by 100
#
# `fc6` is an unpadded $7 \times 7$ convolution on the pool5 map, so it needs pool5 to be at least $7 \times 7$,
# that is an input of at least $7 \cdot 32 = 224$ pixels a side. FCN's authors wanted any input to work, even a
# tiny one, and padded `conv1_1` by 100 pixels: with it, and pooling that rounds up, even a $1 \times 1$ image
# yields a $1 \times 1$ fc7 map (with pooling that rounds down, as in 2017, any side from 26 pixels works).
# The price is twofold:
#
# 1. **Computation.** The first layers run on the padded canvas. For our frame that is $486 \times 582$ instead
#    of $288 \times 384$ pixels, 2.6 times as many.
# 2. **Alignment.** Every map now describes the padded canvas, not the frame. Before two maps can be added, and
#    before the output can be returned, the part that lies over the frame must be cut out: those are the crops.
#
# The figure shows the padded canvas of `conv1_1` (grey) around our frame. After all the pooling and
# upsampling, the final crop keeps exactly the window over the frame (dashed).

# %% mystnb={"image": {"alt": "The frame inside the grey 100-pixel padding of conv1_1, with the dashed window that the final crop keeps"}}
from matplotlib.patches import Rectangle

fig, ax = plt.subplots(figsize=(5, 4))
ax.add_patch(Rectangle((0, 0), 384 + 200, 288 + 200, color="#cccccc",
                       label="padding of conv1_1 (100 px)"))
ax.imshow(frame.permute(1, 2, 0), extent=(100, 484, 388, 100), zorder=2)
ax.add_patch(Rectangle((100, 100), 384, 288, fill=False, edgecolor="black", linestyle="--", linewidth=2,
                       label="what the final crop keeps", zorder=3))
ax.set_xlim(0, 584)
ax.set_ylim(488, 0)
ax.set_aspect("equal")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=1, frameon=False, fontsize=9)
ax.set_title("conv1_1 reads a 488 x 584 canvas\n(its output, and its successors', 486 x 582)",
             fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### The crop offsets of each preset
#
# The package builds the networks in three *presets* that differ exactly here:
#
# * `paper`: the Caffe FCN. Pooling rounds up, and the crops use fixed offsets (FCN-8s: 5 for pool4, 9 for
#   pool3, 31 for the output) that Caffe's `coord_map` worked out from the layers, valid for every input size.
# * `original`: the 2017 tutorial. Pooling rounds down, and each crop takes the *centre* of the larger map,
#   offset $(\text{larger} - \text{smaller}) // 2$, so the offsets depend on the input size.
# * `compact`: no padding of 100 at all. Every $3 \times 3$ convolution pads 1 and `fc6` pads 3, so the maps
#   line up at the top-left corner and the crops only trim a few pixels at the far edges (offset 0).
#
# `crop_offsets` reads the offsets off the model itself, as (top, left) pairs:

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    presets = {preset: build_model("fcn8s", 2, preset=preset)
               for preset in ["paper", "original", "compact"]}
for preset, model in presets.items():
    for size in [(224, 224), (288, 384), (500, 574)]:
        offsets = ", ".join(f"{name} {top},{left}"
                            for name, (top, left) in crop_offsets(model, size).items())
        print(f"{preset:9} {size[0]:3} x {size[1]:3}: {offsets}")

# %% [markdown]
# The `paper` offsets are 5, 9 and 31 at every size. The `original` ones move with the input: 5, 9 and 28 for
# the $224 \times 224$ crops the 2017 tutorial trained on, (5, 5), (10, 9) and (18, 29) on a $500 \times 574$
# frame, different for height and width. Which are right?
#
# Rounding has nothing to do with it. Rounding a pooled size up or down only decides whether a last, partial
# cell exists at the far edge; it never moves the cells that do exist. Where a cell lies on the frame depends
# only on the kernels, strides and paddings of the layers before it. A convolution or pooling with kernel $k$,
# stride $s$ and padding $p$ centres its cell $i$ on position $s\,i + (k - 1)/2 - p$ of its input; a transposed
# convolution does the inverse. Composing the layers gives, for every map, the frame position $a\,i + b$ of its
# cell $i$ (Dumoulin and Visin {cite}`dumoulin2016guide` work through this arithmetic). Two maps can be added
# cell by cell only where their cells lie on the same frame positions, so the larger map must be cut at offset
# $(b_\text{kept} - b_\text{cut}) / a$:

# %%
# NBVAL_CHECK_OUTPUT
def frame_position(layers):
    """(a, b) such that cell i of the last layer is centred on frame position a * i + b."""
    a, b = 1.0, 0.0
    for kind, kernel, stride, padding in layers:
        centre = (kernel - 1) / 2 - padding  # where cell 0 of this layer sits on its input
        if kind == "conv":  # convolution or pooling: cell i sits on input position stride * i + centre
            a, b = a * stride, b + a * centre
        else:  # transposed convolution: input cell i sits on output position stride * i + centre
            a, b = a / stride, b - a * centre / stride
    return a, b


def stage(n_convolutions):
    """A VGG stage: 3 x 3 convolutions with padding 1, then a 2 x 2 max pooling with stride 2."""
    return [("conv", 3, 1, 1)] * n_convolutions + [("conv", 2, 2, 0)]


pool3 = [("conv", 3, 1, 100)] + stage(2)[1:] + stage(2) + stage(3)  # conv1_1 pads by 100
pool4 = pool3 + stage(3)
fc7 = pool4 + stage(3) + [("conv", 7, 1, 0), ("conv", 1, 1, 0)]
upscore2 = fc7 + [("transposed", 4, 2, 0)]
upscore_pool4 = upscore2 + [("transposed", 4, 2, 0)]
upscore8 = upscore_pool4 + [("transposed", 16, 8, 0)]
for name, cut, kept in [("score_pool4", pool4, upscore2), ("score_pool3", pool3, upscore_pool4),
                        ("final", upscore8, [])]:
    (a, b_cut), (_, b_kept) = frame_position(cut), frame_position(kept)
    print(f"{name:12} offset {(b_kept - b_cut) / a:g}")

# %% [markdown]
# No input size appears anywhere: 5, 9 and 31 are the geometric alignment for every frame. They hold for the
# 2017 network too, whose layers are the same (its floor pooling only drops the last partial cell). The 2017
# centre crops follow another rule, "cut the middle", which agrees with the geometry only when the extra rows
# happen to split evenly around it. How far off are they? Multiply each offset's error by the stride of its map
# to get it in frame pixels:

# %%
# NBVAL_CHECK_OUTPUT
geometric = crop_offsets(presets["paper"], (288, 384))
strides = {"score_pool4": 16, "score_pool3": 8, "final": 1}
for size in [(224, 224), (500, 574)]:
    print(f"original FCN-8s on {size[0]} x {size[1]}:")
    for name, (top, left) in crop_offsets(presets["original"], size).items():
        rows = (top - geometric[name][0]) * strides[name]
        columns = (left - geometric[name][1]) * strides[name]
        print(f"  {name:12} centre crop at {top:2}, {left:2}: "
              f"off by {rows:+3d} rows, {columns:+3d} columns of the frame")

# %% [markdown]
# On the $224 \times 224$ training crops the two skips happen to be aligned, but the output is cut 3 pixels too
# early: the mask the network returns is shifted 3 pixels down and to the right of the frame it describes. On a
# $500 \times 574$ frame (the size of the CVC-300 frames of CVC-912) it gets worse: each cell of the fused map
# receives the pool3 scores of the cell below it, 8 pixels further down the frame, and the output is 13 rows and
# 2 columns off. So the network was trained with one misalignment and tested with another. This is the most
# instructive bug of the 2017 code: nothing crashes, every shape matches, the network still learns, and the
# error only shows as blurred, shifted boundaries. The `original` preset keeps the centre crops, to reproduce the
# 2017 network; the `paper` preset crops at the geometric offsets; `compact` needs no offsets at all (its
# transposed convolutions pad by half their stride, which puts every map on the same grid from the top-left
# corner).
#
# ## Transposed convolution and bilinear upsampling
#
# A transposed convolution with stride $s$ places a copy of its $k \times k$ kernel, scaled by each input value,
# every $s$ pixels of the output, and adds up where the copies overlap. One side of the output therefore
# measures
#
# $$
# \text{out} = (\text{in} - 1) \cdot s - 2p + k,
# $$
#
# for padding $p$ (which, for a transposed convolution, *removes* $p$ pixels from each border). FCN's kernels
# are twice the stride ($k = 2s$), so each output pixel is a blend of the two nearest input values in each
# direction. (Dumoulin and Visin {cite}`dumoulin2016guide` draw every case of this arithmetic.) Check the
# formula against `upscore32` of FCN-32s on our $10 \times 13$ fc7 map:

# %%
# NBVAL_CHECK_OUTPUT
upscore = torch.nn.ConvTranspose2d(2, 2, kernel_size=64, stride=32, bias=False)
out = upscore(torch.zeros(1, 2, 10, 13))
print("nn.ConvTranspose2d:", tuple(out.shape[-2:]))
print("formula:           ", ((10 - 1) * 32 + 64, (13 - 1) * 32 + 64))

# %% [markdown]
# What does the layer do with one input value? It multiplies its whole kernel by that value and adds the result
# into the output at `stride` times the input position. The figure shows it for stride 2 and a $4 \times 4$
# kernel: a single 1 in a $3 \times 3$ map paints a copy of the kernel (dashed square) into the $8 \times 8$
# output, first for an arbitrary kernel, then for the bilinear kernel described next. The third panel shows why
# the bilinear kernel interpolates: in one dimension each input value paints a tent, neighbouring tents overlap,
# and their sum is the straight line between the input values (away from the borders, where a tent has no
# neighbour). The last panel is the same in two dimensions.

# %% mystnb={"image": {"alt": "Four panels: a transposed convolution copies a kernel for each input pixel (any kernel, then the bilinear one); in one dimension the overlapping tents add up to linear interpolation; a 3x3 map upsampled to 6x6"}}
from fcn_tutorial.diagrams import draw_transposed_convolution

fig = draw_transposed_convolution(stride=2)
plt.show()
plt.close(fig)

# %% [markdown]
# FCN initialises these kernels so that they start out as *bilinear interpolation*. In one dimension the
# kernel is a tent that is 1 at the centre and falls linearly to 0 at `factor` pixels away; in two dimensions it
# is the product of two tents. `bilinear_kernel(in_channels, out_channels, k)` builds the whole weight: the tent
# between each channel and itself, zero between different channels (scores of class 0 must not leak into
# class 1).

# %% mystnb={"image": {"alt": "One row of the 16 x 16 bilinear kernel, a tent that rises to the centre and falls again, and the whole kernel as an image, brightest in the middle"}}
kernel = bilinear_kernel(1, 1, 16)[0, 0]
fig, (ax_tent, ax_kernel) = plt.subplots(1, 2, figsize=(8, 3))
ax_tent.plot(range(16), kernel[7] / kernel[7].max(), marker="o")
ax_tent.set_title("one row of the 16 x 16 kernel (scaled)")
ax_tent.set_xlabel("kernel position")
image = ax_kernel.imshow(kernel, cmap="viridis")
ax_kernel.set_title("bilinear_kernel(1, 1, 16): stride 8")
fig.colorbar(image, ax=ax_kernel)
plt.tight_layout()
plt.show()

# %% [markdown]
# The kernel of size 16 belongs to stride 8: neighbouring copies overlap by half, and their tents add up to a
# constant, so a constant score map stays constant after upsampling. To see it work, take a real polyp mask,
# shrink it to $1/8$ of its size (averaging $8 \times 8$ blocks, as a stride-8 score map would see it), and
# upsample it again with this kernel:

# %% mystnb={"image": {"alt": "A frame, its polyp mask, the mask averaged to a blocky 1/8 grid, and the grid upsampled 8 times with the bilinear kernel: a soft version of the mask"}}
from fcn_tutorial.data import load_polyp_data

data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note: synthetic frames.** The real polyp data is not available here "
                     f"({data.reason})."))
image, mask = data.val[0]
polyp = (mask == 1).float()[None, None]                       # 1 x 1 x H x W
coarse = F.avg_pool2d(polyp, kernel_size=8)                   # the 1/8 grid of a stride-8 score map
upsampled = F.conv_transpose2d(coarse, bilinear_kernel(1, 1, 16), stride=8, padding=4)
print(f"mask {tuple(polyp.shape[-2:])} -> coarse {tuple(coarse.shape[-2:])} "
      f"-> upsampled {tuple(upsampled.shape[-2:])}")

fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
panels = [(image.permute(1, 2, 0), "frame"), (polyp[0, 0], "polyp mask"), (coarse[0, 0], "1/8 grid"),
          (upsampled[0, 0], "upsampled x 8, bilinear")]
for ax, (picture, title) in zip(axes, panels):
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# The upsampled map is smooth where the coarse one was blocky: each output pixel blends its four nearest coarse
# cells. Its edge is soft, but it lies where the true edge is; thresholding it at 0.5 gives back a good outline.
# The printed sizes differ by a few pixels where a side of the mask is not a multiple of 8: the 1/8 grid keeps
# only whole cells, and this kernel (16, stride 8, padding 4) makes exactly 8 pixels of each cell. Scoring
# resizes the scores to each mask's full size anyway; exercise 2 below asks which kernels make the size exact.
#
# ### Learned or fixed?
#
# Are the upsampling weights trained afterwards? The two sources of the FCN disagree. The paper's text
# {cite}`long2015fcn` says that the intermediate $2\times$ upsamplings are initialised to bilinear interpolation
# and then learned with the rest of the network. The reference Caffe networks that the authors published
# (fcn.berkeleyvision.org {cite}`shelhamer2015reference`, `voc-fcn8s/net.py`) give all three Deconvolution
# layers `lr_mult: 0`: their weights never change, so every upsampling stays fixed bilinear interpolation. Our presets all train their
# transposed convolutions, and differ in where they start:

# %%
# NBVAL_CHECK_OUTPUT
for preset in ["paper", "original", "compact"]:
    model = build_model("fcn8s", n_classes=2, preset=preset, width=0.125)
    for name in ["upscore2", "upscore_pool4", "upscore8"]:
        layer = getattr(model, name)
        starts_bilinear = torch.equal(layer.weight, bilinear_kernel(2, 2, layer.kernel_size[0]))
        print(f"{preset:9} {name:14} starts bilinear {starts_bilinear!s:5}  "
              f"bias {layer.bias is not None!s:5}  trained {layer.weight.requires_grad}")

# %% [markdown]
# `paper` and `compact` start as bilinear interpolation without a bias and learn from there, which is what the
# paper's text describes (for all three layers, where the text only mentions the intermediate ones). The
# `original` preset does what the 2017 tutorial did: random Glorot-uniform weights with a bias, so the network
# must learn to upsample from scratch. To get the reference Caffe behaviour instead, freeze the layers before
# building the optimiser: `model.upscore8.weight.requires_grad_(False)`, and the same for the other two (the
# package's optimiser only collects parameters that require a gradient).
#
# ## Parameters and cost
#
# How big are the networks? The parameter counts for two classes:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'':8}" + "".join(f"{preset:>14}" for preset in ["paper", "original", "compact"]))
for name in ["fcn32s", "fcn16s", "fcn8s"]:
    counts = []
    for preset in ["paper", "original", "compact"]:
        with torch.device("meta"):
            model = build_model(name, n_classes=2, preset=preset)
        counts.append(sum(parameter.numel() for parameter in model.parameters()))
    print(f"{name:8}" + "".join(f"{count:>14,}" for count in counts))

# %% [markdown]
# All nine are within 0.02% of each other: the backbone dominates. FCN-8s has 134,271,430 parameters in the
# `paper` preset, like the Caffe model, and 6 more in the `original` preset, which gives its three transposed
# convolutions a bias of two values each. FCN-32s has the most because its single $64 \times 64$ upsampling
# kernel is larger than FCN-8s's three smaller ones.
#
# Parameters say little about speed. The FLOPs of one forward pass do, and they depend on the input size and on
# the padding:

# %%
# NBVAL_CHECK_OUTPUT
costs = {}
for preset, width in [("paper", 1.0), ("original", 1.0), ("compact", 1.0), ("compact", 0.25)]:
    with torch.device("meta"):
        model = build_model("fcn8s", n_classes=2, preset=preset, width=width)
    label = preset if width == 1.0 else f"{preset}, width {width:g}"
    costs[label] = [count_flops(model, size) / 1e9 for size in [(224, 224), (288, 384)]]
    print(f"FCN-8s {label:20} {costs[label][0]:7.1f} GFLOPs at 224 x 224, "
          f"{costs[label][1]:7.1f} at 288 x 384")

# %% mystnb={"image": {"alt": "Bar chart of the GFLOPs of one FCN-8s forward pass for the paper, original and compact presets and the compact preset at width 0.25, at 224 x 224 and 288 x 384 pixels"}}
fig, ax = plt.subplots(figsize=(8, 3))
positions = torch.arange(len(costs))
ax.bar(positions - 0.2, [c[0] for c in costs.values()], width=0.4, label="224 x 224")
ax.bar(positions + 0.2, [c[1] for c in costs.values()], width=0.4, label="288 x 384")
ax.set_xticks(positions.tolist(), list(costs))
ax.set_ylabel("GFLOPs per image")
ax.set_title("FCN-8s, one forward pass")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Dropping the padding of 100 (`compact`) cuts the work on a $224 \times 224$ crop to a third: most of the
# paper's cost is spent on the padded border. A quarter of the width cuts it by another factor of about 16,
# because a convolution's cost grows with the product of its input and output channels. Narrow compact
# networks are what a CPU can train: [the training chapter](06_training.ipynb) trains one of an eighth of
# the width in its quick profile, and one of a quarter of the width for half an hour.
#
# ## Explore the architecture
#
# The architecture explorer shows the `summary` table for any input size you type. The site shows it for one
# size; in a running notebook the cell after it gives you the interactive version.

# %%
from fcn_tutorial.widgets import ArchitectureExplorer

with torch.device("meta"):
    explorer = ArchitectureExplorer("fcn8s", "original", input_size=(224, 224))
explorer

# %% tags=["remove-output"]
explorer.widget()

# %% [markdown]
# Try an input of $100 \times 100$: the `original` network still works thanks to the padding, while a
# $25 \times 25$ input is too small for it. Then build the explorer with the `compact` preset and compare the
# shapes: no padded canvas, and every map is exactly the input size divided by its stride, rounded up.
#
# ## Summary
#
# * FCN-32s, FCN-16s and FCN-8s share VGG16 read as convolutions (`fc6` a $7 \times 7$ convolution, `fc7`
#   $1 \times 1$) and differ only in a small head: how many finer maps (pool4, pool3) are scored and added
#   before the final upsampling.
# * The padding of 100 lets any input size pass the unpadded `fc6`, but makes the early layers compute on a
#   much larger canvas and requires crops to re-align the maps. The geometric offsets (5, 9, 31) follow from
#   the layers alone and hold for every size (`paper` preset); the 2017 centre crops (`original` preset) depend
#   on the size and are out of register: 3 pixels at $224 \times 224$, a whole pool3 cell on $500 \times 574$.
# * A transposed convolution's output side is $(\text{in}-1)s - 2p + k$; initialised with a bilinear kernel of
#   size $2s$, it starts out as bilinear interpolation. The reference Caffe nets keep it fixed; the paper's text
#   learns the intermediate ones; our presets learn all three, from bilinear (`paper`, `compact`) or from random
#   weights (`original`).
# * The networks have about 134 million parameters, nearly all in `fc6` and `fc7`; the cost is spread over
#   the convolutions of every stage, run on the padded canvas, and the `compact` preset avoids most of it.
#
# ## Exercises
#
# 1. **Bilinear kernel** (3 points). Write `my_bilinear_kernel(in_channels, out_channels, kernel_size)` that
#    returns the `in_channels x out_channels x k x k` weight described above, without calling the package's
#    `bilinear_kernel`. Mind the centre for even kernel sizes: it lies between two pixels.

# %% nbgrader={"grade_id": "bilinear_kernel", "solution": true}
def my_bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """The weight of a transposed convolution that upsamples each channel bilinearly."""
    ### BEGIN SOLUTION
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    tent = 1 - (torch.arange(kernel_size) - centre).abs() / factor
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    for channel in range(min(in_channels, out_channels)):
        weight[channel, channel] = tent[:, None] * tent[None, :]
    return weight
    ### END SOLUTION


# %% nbgrader={"grade_id": "bilinear_kernel_test", "grade": true, "points": 3}
from fcn_tutorial import exercises

exercises.check_bilinear_kernel(my_bilinear_kernel)
### BEGIN HIDDEN TESTS
for _shape in [(3, 5, 8), (4, 2, 7), (1, 1, 32), (2, 2, 1)]:
    _want = bilinear_kernel(*_shape).double()
    _got = torch.as_tensor(my_bilinear_kernel(*_shape)).double()
    assert _got.shape == _want.shape and torch.allclose(_got, _want), f"my_bilinear_kernel{_shape} is wrong"
import inspect

assert " bilinear_kernel(" not in inspect.getsource(my_bilinear_kernel), "do not call the package's bilinear_kernel"
### END HIDDEN TESTS

# %% [markdown]
# 2. **Upsampling by an exact factor** (2 points). A transposed convolution of stride $s$ turns a side of
#    $n$ cells into $(n - 1)s - 2p + k$ pixels: not exactly $n s$. Write `exact_upsampling(factor)`, which returns
#    the `(kernel_size, stride, padding)` of a transposed convolution that makes *every* side exactly `factor`
#    times larger and, with the bilinear kernel of exercise 1, blends neighbouring cells as bilinear
#    interpolation does (its kernel spans about `2 * factor` pixels). It must work for odd factors too.

# %% nbgrader={"grade_id": "exact_upsampling", "solution": true}
def exact_upsampling(factor: int) -> tuple[int, int, int]:
    """(kernel_size, stride, padding) of a bilinear transposed convolution that enlarges exactly factor times."""
    ### BEGIN SOLUTION
    return 2 * factor - factor % 2, factor, factor // 2
    ### END SOLUTION


# %% nbgrader={"grade_id": "exact_upsampling_test", "grade": true, "points": 2}
exercises.check_exact_upsampling(exact_upsampling)
### BEGIN HIDDEN TESTS
for _factor in [6, 7, 9, 64]:
    _kernel, _stride, _padding = exact_upsampling(_factor)
    _layer = torch.nn.ConvTranspose2d(1, 1, _kernel, _stride, _padding, bias=False)
    _shape = tuple(_layer(torch.zeros(1, 1, 3, 11)).shape[-2:])
    assert _shape == (3 * _factor, 11 * _factor), f"exact_upsampling({_factor}) turns 3 x 11 into {_shape}"
    assert _kernel == 2 * _factor - _factor % 2, f"exact_upsampling({_factor}): kernel {_kernel}"
### END HIDDEN TESTS

# %% [markdown]
# 3. **Crop offsets by hand** (3 points). Write `original_crop_offsets(height, width)` that returns the crops
#    of the `original` FCN-8s for an input of that size, in the form `crop_offsets` uses:
#    `{"score_pool4": (top, left), "score_pool3": (top, left), "final": (top, left)}`. Follow one side through
#    the network: `conv1_1` adds $2 \cdot 100 - 2$ pixels, each pooling halves and rounds down, `fc6` removes 6,
#    each transposed convolution follows the formula above, and each crop takes the centre. Do not call the
#    package's `crop_offsets` (its checker does).

# %% nbgrader={"grade_id": "crop_offsets", "solution": true}
def original_crop_offsets(height: int, width: int) -> dict:
    """{"score_pool4": (top, left), "score_pool3": (top, left), "final": (top, left)} of the original FCN-8s."""
    ### BEGIN SOLUTION

    def one_side(size: int) -> tuple[int, int, int]:
        padded = size + 2 * 100 - 2  # conv1_1: 3 x 3, padding 100; the other 3 x 3 convs keep the size
        pool3, pool4, pool5 = padded // 8, padded // 16, padded // 32  # floor pooling, three to five times
        fc7 = pool5 - 6  # fc6: 7 x 7, no padding
        upscore2 = (fc7 - 1) * 2 + 4  # kernel 4, stride 2
        upscore_pool4 = (upscore2 - 1) * 2 + 4  # after adding the cropped pool4 scores
        upscore8 = (upscore_pool4 - 1) * 8 + 16  # after adding the cropped pool3 scores
        return (pool4 - upscore2) // 2, (pool3 - upscore_pool4) // 2, (upscore8 - size) // 2

    rows, columns = one_side(height), one_side(width)
    return {name: (top, left) for name, top, left in zip(["score_pool4", "score_pool3", "final"], rows, columns)}
    ### END SOLUTION


# %% nbgrader={"grade_id": "crop_offsets_test", "grade": true, "points": 3}
exercises.check_crop_offsets(original_crop_offsets)
### BEGIN HIDDEN TESTS
_model = build_model("fcn8s", 2, preset="original", width=0.0625)
for _size in [(331, 487), (1064, 1920), (64, 200), (257, 255)]:
    _want, _got = crop_offsets(_model, _size), original_crop_offsets(*_size)
    assert {key: tuple(value) for key, value in _got.items()} == _want, f"{_size}: {_got} instead of {_want}"
import inspect

_code = inspect.getsource(original_crop_offsets)
assert "crop_offsets(" not in _code.replace("def original_crop_offsets(", ""), "do not call the package's crop_offsets"
### END HIDDEN TESTS
