# ---
# jupyter:
#   # Chapter 2, "From classification to segmentation": the source of book/02_classification_to_segmentation.ipynb.
#   # Sync the notebook with `python book/_src/build.py 02`; see CONTRIBUTING.md.
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["colab-setup"]
# Set-up cell: replaced by scripts/setup_cell.py.

# %% [markdown]
# # From classification to segmentation
#
# An image classifier answers one question about a whole picture: *what* is in it. A segmenter must
# also say *where*, for every single pixel. This chapter shows, with tensor shapes and real polyp
# frames, how a classification network is turned into a segmentation network, and what each of the
# three ingredients of an FCN (a downsampling path, an upsampling path and skip connections) does.
#
# **Audience and goals.** You have trained or at least read about a convolutional classifier. After
# this chapter you can explain why a network with only local layers accepts any input size, predict
# the size of every feature map of VGG16, and say what detail is lost by downsampling and how
# upsampling and skip connections bring it back.
#
# **Running this code.** Everything here runs in well under a minute on a CPU, whatever the profile.

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from fcn_tutorial.data import load_polyp_data

torch.manual_seed(0)
data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note:** the real polyp frames were not found, so this chapter uses the "
                     f"synthetic set instead ({data.reason})."))

# %% [markdown]
# We work with one training frame, resized to 288 x 384 pixels (height x width), a size that the
# five halvings of VGG16 divide exactly. The data set returns the mask as a `tv_tensors.Mask`, so
# `torchvision` resizes it with nearest-neighbour interpolation and it keeps its class labels. (We
# then drop the `tv_tensors` wrappers with `as_subclass`, to work with plain tensors.)

# %%
# NBVAL_CHECK_OUTPUT
image, mask = data.train[0]
image = TF.resize(image, [288, 384], antialias=True).as_subclass(torch.Tensor)
mask = TF.resize(mask, [288, 384]).as_subclass(torch.Tensor)
print("image", tuple(image.shape), "mask", tuple(mask.shape), "labels", mask.unique().tolist())

# %% [markdown]
# ## What and where
#
# A classifier maps the frame to one vector of class scores. We use torchvision's VGG16
# {cite}`simonyan2015vgg`, the network that the FCN paper {cite}`long2015fcn` started from, with random
# weights: shapes do not depend on the weights.

# %%
# NBVAL_CHECK_OUTPUT
from torchvision.models import vgg16

classifier = vgg16(weights=None, num_classes=2).eval()
with torch.no_grad():
    scores = classifier(image.unsqueeze(0))
print("classifier output:", tuple(scores.shape), "-> one score per class for the whole frame")

# %% [markdown]
# Two numbers for the whole frame: "polyp" or "no polyp", but nothing about where the polyp is. A
# segmenter instead returns one score per class *and per pixel*, a stack of maps as large as the input:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.models import build_model

segmenter = build_model("fcn8s", n_classes=2, preset="compact", width=0.25).eval()
with torch.no_grad():
    logits = segmenter(image.unsqueeze(0))
print("segmenter output: ", tuple(logits.shape), "-> a score for each class at each pixel")
print("predicted labels: ", tuple(logits.argmax(dim=1).shape), "-> the same shape as the mask")

# %% [markdown]
# (We built an FCN-8s with a quarter of VGG16's channels, `width=0.25`, to keep this page fast; the
# `compact` preset pads every convolution so that each map is an exact fraction of the input. Neither
# choice changes the shapes that matter here; [chapter 4](04_fcn_architectures.ipynb) builds the
# full-size networks.)
#
# Notice the difference in the last two axes: the classifier squeezed all of space away; the
# segmenter keeps it. Taking the highest score at each pixel (`argmax` over the class axis) gives a
# predicted mask with exactly the shape of the true one, so we can compare them pixel by pixel.

# %% [markdown]
# ## Fully convolutional: only local layers
#
# A convolution looks at a small window and slides it over the whole input. It does not care how
# large the input is: a bigger input simply gives a bigger output. A fully connected (`Linear`) layer
# is different: it has one weight per input value, so it only accepts inputs of the size it was
# built for.

# %%
# NBVAL_CHECK_OUTPUT
conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
for size in [(288, 384), (530, 622)]:
    x = torch.rand(1, 3, *size)
    print(f"conv on {size}: output {tuple(conv(x).shape)}")

dense = nn.Linear(3 * 288 * 384, 2)
try:
    dense(torch.rand(1, 3, 530, 622).flatten(1))
except RuntimeError as error:
    print("linear on (530, 622):", type(error).__name__)

# %% [markdown]
# The convolution handles both sizes; the linear layer refuses the second. A network built only from
# local layers (convolution, pooling, upsampling, element-wise functions) is called **fully
# convolutional**, and it accepts frames of any size. That matters here, because polyp frames come
# in many sizes.
#
# But wait: torchvision's VGG16 has three `Linear` layers, and yet it took our $288 \times 384$ frame
# without complaint, although VGG16 was trained on $224 \times 224$ crops. The reason is one layer between
# the convolutions and the dense layers, `avgpool`, an `AdaptiveAvgPool2d((7, 7))`: it averages whatever
# map it receives down to $7 \times 7$ cells. `summary` (from the package; it runs on PyTorch's meta
# device, so it costs nothing) shows the sizes for three inputs:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.models import summary

print(classifier.avgpool)
for size in [(224, 224), (288, 384), (530, 622)]:
    rows = summary(classifier, size)
    shapes = {row.name: row.output_shape for row in rows}
    print(f"input {size[0]} x {size[1]}: last pooling {shapes['features.30'][-2:]} "
          f"-> avgpool {shapes['avgpool'][-2:]} -> output {rows[-1].output_shape}")

# %% [markdown]
# So torchvision's VGG16 accepts any size (from $32 \times 32$ up), but that does not make it a
# segmentation network. The adaptive pooling makes the map *fit* the dense layers by averaging space
# away: on a large frame each of the 49 cells averages a bigger region, and the dense layers still mix
# all of them into one vector of class scores for the whole frame. Accepting any size is not the point;
# keeping a map whose cells correspond to places in the frame is. The FCN route keeps that map.
#
# How does one turn a classifier into such a network? Its dense layers look at the whole final
# feature map, say $512 \times 7 \times 7$ values. A convolution whose kernel is exactly $7 \times 7$
# computes the same weighted sums, so we can reshape the dense weights into a kernel:

# %%
# NBVAL_CHECK_OUTPUT
dense = nn.Linear(64 * 7 * 7, 10)
as_conv = nn.Conv2d(64, 10, kernel_size=7)
with torch.no_grad():
    as_conv.weight.copy_(dense.weight.view(10, 64, 7, 7))
    as_conv.bias.copy_(dense.bias)
    features = torch.rand(1, 64, 7, 7)
    same = torch.allclose(dense(features.flatten(1)), as_conv(features).flatten(1), atol=1e-5)
    print("same scores on a 7x7 map:", same)
    print("on a 10x12 map the convolution gives a map of scores:",
          tuple(as_conv(torch.rand(1, 64, 10, 12)).shape))

# %% [markdown]
# On the map size it was trained for, the converted layer gives the same scores; on a larger map it
# gives a small map of scores, one classification per window. This "convolutionalisation" is the
# first idea of the FCN paper; the next two explain how to turn that coarse map back into a
# full-size mask.

# %% [markdown]
# ## The downsampling path: context at a price
#
# VGG16 stacks 13 convolutions in five blocks, and ends each block with a $2 \times 2$ max pooling
# that halves the height and width. Let us follow our 288 x 384 frame through torchvision's VGG16
# and print the size after every pooling layer.

# %%
# NBVAL_CHECK_OUTPUT
x = image.unsqueeze(0)
with torch.no_grad():
    for layer in classifier.features:
        x = layer(x)
        if isinstance(layer, nn.MaxPool2d):
            stride = image.shape[-1] // x.shape[-1]
            print(f"after a pooling layer: {x.shape[1]:3d} channels, {x.shape[2]:3d} x {x.shape[3]:3d}  "
                  f"(1/{stride} of the input)")

# %% [markdown]
# After five poolings the map is 32 times smaller in each direction: 9 x 12 positions, each with 512
# channels. Every position now "sees" a large part of the frame, which is exactly what makes it good
# at deciding *what* is there. But a 9 x 12 map cannot hold a precise outline. To see how much is
# lost, we average the frame and its mask over blocks of 2, 4, ... 32 pixels:

# %% mystnb={"image": {"alt": "The frame and its polyp mask averaged over blocks of 1, 2, 4, 8, 16 and 32 pixels: the outline turns blocky, and at 1/32 only a few grey cells are left"}}
factors = [1, 2, 4, 8, 16, 32]
polyp = (mask == 1).float()[None, None]
fig, axes = plt.subplots(2, len(factors), figsize=(10, 3.6), dpi=100)
for column, factor in enumerate(factors):
    small_image = F.avg_pool2d(image[None], factor)[0]
    small_mask = F.avg_pool2d(polyp, factor)[0, 0]
    axes[0, column].imshow(small_image.permute(1, 2, 0))
    axes[1, column].imshow(small_mask, cmap="gray", vmin=0, vmax=1)
    axes[0, column].set_title(f"1/{factor}: {small_mask.shape[0]}x{small_mask.shape[1]}", fontsize=9)
for axis in axes.flat:
    axis.axis("off")
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# At 1/8 the polyp still has its shape; at 1/32 it is a handful of grey blocks. Grey is the telling
# colour: those cells hold polyp and background together, and a single label per cell cannot
# describe the boundary that runs through them. We can put a number on the loss: shrink the mask,
# blow it back up to full size, and compare with the original using the Jaccard index (the overlap
# divided by the union; [chapter 5](05_measuring_segmentation.ipynb) treats it properly).

# %%
def jaccard(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Intersection over union of two boolean masks."""
    return ((predicted & target).sum() / (predicted | target).sum()).item()


def round_trip(mask: torch.Tensor, factor: int, mode: str = "bilinear") -> torch.Tensor:
    """Average the polyp mask over factor x factor blocks, upsample it back, threshold at one half."""
    small = F.avg_pool2d((mask == 1).float()[None, None], factor)
    return F.interpolate(small, size=mask.shape, mode=mode)[0, 0] >= 0.5

# %%
for factor in [2, 4, 8, 16, 32]:
    score = jaccard(round_trip(mask, factor), mask == 1)
    print(f"1/{factor:<2d}: Jaccard after the round trip {score:.3f}")

# %% [markdown]
# Even with a perfect coarse map, a network that predicts at 1/32 and upsamples loses a few percent
# of Jaccard on this large polyp, and far more on a small one, where the boundary is a larger share
# of the object. Let us check that over more frames, small polyps (under 5 % of the frame) apart from larger ones:

# %%
n_frames = min(len(data.train), 24)
results = []
for index in range(n_frames):
    frame_mask = TF.resize(tv_tensors.Mask(data.train[index][1]), [288, 384]).as_subclass(torch.Tensor)
    share = (frame_mask == 1).float().mean().item()
    results.append((share, jaccard(round_trip(frame_mask, 32), frame_mask == 1)))
small = [score for share, score in results if share < 0.05]
large = [score for share, score in results if share >= 0.05]
print(f"{n_frames} frames; mean Jaccard after a 1/32 round trip:")
print(f"  polyps under 5% of the frame: {sum(small) / max(len(small), 1):.3f} ({len(small)} frames)")
print(f"  polyps of 5% or more:         {sum(large) / max(len(large), 1):.3f} ({len(large)} frames)")

# %% [markdown]
# The smaller the polyp, the more a coarse map hurts. Small polyps are also the ones a doctor most
# easily misses, so the upsampling path deserves care.

# %% [markdown]
# ## The upsampling path
#
# The upsampling path turns the coarse map back into a full-size one. Three common ways to do it:
#
# * **nearest neighbour** copies each coarse value into a block of pixels;
# * **bilinear interpolation** blends the four nearest coarse values, weighting each by closeness;
# * a **transposed convolution** ("deconvolution") lets each coarse value paint a learned pattern,
#   its kernel, into the output. With stride $s$ it enlarges the map $s$ times (Dumoulin and Visin
#   {cite}`dumoulin2016guide` illustrate its arithmetic, and [chapter 4](04_fcn_architectures.ipynb) draws
#   it).
#
# A transposed convolution whose kernel is a bilinear "tent" computes bilinear interpolation, so it
# can start as bilinear upsampling and then learn something better. The package's
# `bilinear_kernel` builds that starting kernel:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.models import bilinear_kernel

print(bilinear_kernel(1, 1, 4)[0, 0])

# %% [markdown]
# The kernel rises linearly to the centre and falls again; its values for one output pixel add up to
# one, so a constant map stays constant. Now we upsample the 1/32 polyp map (9 x 12) back to
# 288 x 384 in the three ways. For the transposed convolution, a stride of 32 with a kernel of 64 and
# a padding of 16 gives exactly $(9 - 1) \cdot 32 + 64 - 2 \cdot 16 = 288$ rows.

# %%
coarse = F.avg_pool2d(polyp, 32)
upsampled = {
    "nearest": F.interpolate(coarse, size=mask.shape, mode="nearest"),
    "bilinear": F.interpolate(coarse, size=mask.shape, mode="bilinear"),
    "transposed conv": F.conv_transpose2d(coarse, bilinear_kernel(1, 1, 64), stride=32, padding=16),
}
for name, result in upsampled.items():
    score = jaccard(result[0, 0] >= 0.5, mask == 1)
    print(f"{name:16s} {tuple(result.shape[-2:])}  Jaccard {score:.3f}")

# %% mystnb={"image": {"alt": "A coarse 1/32 polyp map and the same map upsampled to full size three ways, with the true outline in red: nearest neighbour gives blocks, bilinear interpolation and the bilinear transposed convolution the same smooth blob"}}
fig, axes = plt.subplots(1, 4, figsize=(10, 2.4), dpi=100)
axes[0].imshow(coarse[0, 0], cmap="gray", vmin=0, vmax=1)
axes[0].set_title("1/32 map (9x12)", fontsize=9)
for axis, (name, result) in zip(axes[1:], upsampled.items()):
    axis.imshow(result[0, 0], cmap="gray", vmin=0, vmax=1)
    axis.contour(mask == 1, levels=[0.5], colors="tab:red", linewidths=0.8)
    axis.set_title(name, fontsize=9)
for axis in axes:
    axis.axis("off")
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# The red line is the true outline. Nearest neighbour gives blocks; bilinear interpolation and the
# bilinear transposed convolution give the same smooth blob. (Their Jaccard values differ because
# of a band along the frame's border: beyond the edge, the transposed convolution sees zeros, while
# interpolation repeats the edge values. Away from that band the two are equal.) None of them can recover the
# dents of the real outline, because that detail is simply not in a 9 x 12 map. Upsampling can
# smooth; it cannot invent.

# %% [markdown]
# ## Skip connections: coarse meaning plus fine detail
#
# The earlier layers of the downsampling path still have the detail: pool3 works at 1/8, pool4 at
# 1/16. Their features are less sure about *what* they see, but they know *where* edges are. A
# **skip connection** scores such an earlier map and adds its scores to the upsampled coarse ones.
#
# Why should *adding* two score maps help? Each stage makes its own kind of mistake. We simulate the
# polyp scores of the two stages for our frame, at 1/8 of its size (positive means "polyp"):
#
# * the **coarse** scores come from the 1/32 map, upsampled 4 times: confident about *what*, far from
#   the polyp strongly negative, but blurred over 32-pixel blocks, so the boundary is wrong;
# * the **fine** scores come from a 1/8 map: their boundary is sharp, but a pool3 cell has seen only a
#   small window of the frame, so it is also fooled by polyp-like texture elsewhere. We model that
#   with random false alarms (seeded noise).
#
# The skip connection adds them, as FCN-8s does, and the sum is upsampled to full size:

# %%
def simulated_scores(polyp: torch.Tensor, generator: torch.Generator, noise: float = 1.5):
    """Polyp scores at 1/8 of the frame (positive = polyp): coarse (from 1/32) and fine (sharp,
    noisy)."""
    fine = F.avg_pool2d(polyp, 8)
    coarse = F.interpolate(F.avg_pool2d(polyp, 32), size=fine.shape[-2:], mode="bilinear")
    return 4 * (coarse - 0.5), 4 * (fine - 0.5) + noise * torch.randn(fine.shape, generator=generator)


def scores_to_mask(scores: torch.Tensor, size) -> torch.Tensor:
    """Upsample 1 x 1 x h x w scores to full size (bilinear) and call positive pixels polyp."""
    return F.interpolate(scores, size=size, mode="bilinear")[0, 0] > 0


coarse_scores, fine_scores = simulated_scores(polyp, torch.Generator().manual_seed(0))
sources = {"coarse scores only": coarse_scores, "fine scores only": fine_scores,
           "coarse + fine (skip)": coarse_scores + fine_scores}
for name, scores in sources.items():
    print(f"{name:22s} Jaccard {jaccard(scores_to_mask(scores, mask.shape), mask == 1):.3f}")

# %% mystnb={"image": {"alt": "Polyp scores from the coarse map alone, the fine map alone and their sum (the skip), and the masks they give, with the true outline in red"}}
fig, axes = plt.subplots(2, 3, figsize=(9, 4.4), dpi=100)
for column, (name, scores) in enumerate(sources.items()):
    axes[0, column].imshow(scores[0, 0], cmap="coolwarm", vmin=-4, vmax=4)
    axes[0, column].set_title(f"{name} (1/8)", fontsize=9)
    axes[1, column].imshow(scores_to_mask(scores, mask.shape), cmap="gray")
    axes[1, column].contour(mask == 1, levels=[0.5], colors="tab:red", linewidths=0.8)
for axis in axes.flat:
    axis.axis("off")
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# Top row: the scores (red positive, blue negative); bottom row: the full-size masks they give, with the
# true outline in red. The coarse scores find the polyp but round its outline; the fine scores follow
# the outline but scatter false polyps over the frame. In the sum, far from the polyp the confident
# negative coarse score outvotes the fine false alarms, and along the boundary, where the coarse score
# is near zero, the fine scores decide. The sum is better than either source alone. One frame could be
# luck, so here are the same three scores on the first frames of the training split:

# %%
generator = torch.Generator().manual_seed(0)
totals = {name: [] for name in sources}
for index in range(n_frames):
    frame_mask = TF.resize(tv_tensors.Mask(data.train[index][1]), [288, 384]).as_subclass(torch.Tensor)
    coarse_scores, fine_scores = simulated_scores((frame_mask == 1).float()[None, None], generator)
    for name, scores in zip(totals, [coarse_scores, fine_scores, coarse_scores + fine_scores]):
        totals[name].append(jaccard(scores_to_mask(scores, frame_mask.shape), frame_mask == 1))
for name, values in totals.items():
    print(f"{name:22s} mean Jaccard {sum(values) / len(values):.3f} over {len(values)} frames")
best = sum(fused >= max(coarse, fine) for coarse, fine, fused in zip(*totals.values()))
print(f"the sum is at least as good as both sources on {best} of {n_frames} frames")

# %% [markdown]
# In a real FCN-8s nobody hands us the two score maps: $1 \times 1$ convolutions learn to compute
# class scores from each pooling stage, and training sets their weights so that the sum is right. The
# fine stage needs the coarse one to know *what*, and the coarse stage needs the fine one to know
# exactly *where*.
#
# This is the whole story of the FCN family, which [chapter 4](04_fcn_architectures.ipynb) builds
# layer by layer: **FCN-32s** upsamples the 1/32 scores directly; **FCN-16s** first adds scores
# computed from pool4 (1/16); **FCN-8s** adds scores from pool3 (1/8) too.
#
# We can already look at the score maps that our FCN-8s fuses for the 288 x 384 frame: `summary`
# lists every layer's output shape, and we keep the layers after the backbone.

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.models import summary

for layer in summary(segmenter, (1, 3, 288, 384)):
    if not layer.name.startswith("backbone."):
        print(f"{layer.name:16s} {layer.type:16s} {' x '.join(map(str, layer.output_shape))}")

# %% [markdown]
# Read it top to bottom: class scores at 1/32 (9 x 12) from `score_fr`, upsampled 2x (`upscore2`)
# and added to scores from pool4 (18 x 24); the sum upsampled 2x again and added to scores from
# pool3 (36 x 48); and a final 8x upsampling to the full 288 x 384. The crops do nothing with the
# `compact` preset; chapter 4 shows where they matter. The same network as a picture, drawn by
# `fcn_tutorial.diagrams` from a full-width compact FCN-8s (so with VGG16's real channel counts):

# %% mystnb={"image": {"alt": "Diagram of FCN-8s on a 288 x 384 frame: VGG16's five pooling stages on top, three 1x1 score layers in the middle, and the upsampling path at the bottom that adds the pool4 and pool3 scores"}}
from fcn_tutorial.diagrams import draw_fcn8s

fig = draw_fcn8s((288, 384), preset="compact")
plt.show()
plt.close(fig)

# %% [markdown]
# Does each of the three paths really reach the output? We can ask the network itself. Raise the polyp
# score of one layer by 1 everywhere (through that layer's bias) and look at how the final scores
# change. Bilinear upsampling keeps a constant map constant and the skips add, so each path should
# raise the final polyp scores by exactly 1, away from the border of the frame, and leave the background
# scores alone; a network that dropped a skip would show no change for that path.

# %%
# NBVAL_CHECK_OUTPUT
probe = torch.rand(1, 3, 288, 384, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    before = segmenter(probe)
    for name in ["score_fr", "score_pool4", "score_pool3"]:
        bias = getattr(segmenter, name).bias
        saved = bias.clone()
        bias[1] += 1  # class 1: polyp
        change = (segmenter(probe) - before)[0, :, 32:-32, 32:-32]  # 32 pixels from the border
        bias.copy_(saved)
        print(f"polyp bias of {name:11s} +1: final polyp scores "
              f"{change[1].min():+.3f} to {change[1].max():+.3f}, "
              f"background scores changed by {change[0].abs().max():.3f}")

# %% [markdown]
# ## Summary
#
# * A classifier outputs one vector per image; a segmenter outputs a map of class scores as large
#   as the image, and its `argmax` is the predicted mask.
# * Local layers do not care about the input size; dense layers do. torchvision's VGG16 takes any size
#   only because `AdaptiveAvgPool2d` averages every map down to $7 \times 7$, which throws the layout
#   away. Rewriting dense layers as convolutions makes a classifier fully convolutional and keeps it.
# * Pooling gives context (*what*) but shrinks the map; at 1/32 the outline of a polyp is gone, and
#   small polyps suffer most.
# * Nearest, bilinear and transposed-convolution upsampling restore the size, not the detail. A
#   transposed convolution with a bilinear kernel starts out as bilinear interpolation and can learn.
# * Skip connections add scores from finer stages (1/16, 1/8) to the upsampled coarse scores. The
#   coarse scores know *what* but blur the boundary; the fine ones know *where* but are easily fooled;
#   their sum is better than either.
#
# ## Exercises
#
# 1. **Feature-map sizes** (2 points). Write `conv_output_size(size, kernel, stride=1, padding=0)`, which
#    returns the length of one side of a convolution's (or a pooling's) output. PyTorch rounds down.

# %% nbgrader={"grade_id": "conv_output_size", "solution": true}
def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Length of one side of the output of a convolution or pooling layer."""
    ### BEGIN SOLUTION
    return (size + 2 * padding - kernel) // stride + 1
    ### END SOLUTION


# %% nbgrader={"grade_id": "conv_output_size_test", "grade": true, "points": 2}
from fcn_tutorial.exercises import check_conv_output_size

check_conv_output_size(conv_output_size)
### BEGIN HIDDEN TESTS
for size, kernel, stride, padding in [(1000, 11, 4, 2), (31, 5, 3, 1), (64, 2, 2, 0), (17, 7, 1, 3), (2, 3, 2, 1)]:
    want = torch.nn.Conv2d(1, 1, kernel, stride, padding)(torch.zeros(1, 1, size, size)).shape[-1]
    got = conv_output_size(size, kernel, stride, padding)
    assert got == want, f"conv_output_size({size}, {kernel}, {stride}, {padding}) gave {got}, nn.Conv2d {want}"
### END HIDDEN TESTS

# %% [markdown]
# Open questions: write your answer in the cell below each one.
#
# 2. Use `conv_output_size` to find the sizes of VGG16's five pooling outputs for a 530 x 622 frame,
#    the most common Kvasir-SEG size. Which halvings drop a row or a column, and what does that mean
#    for upsampling back to 530 x 622?

# %% [markdown] nbgrader={"grade_id": "vgg_pooling_sizes", "solution": true, "grade": true, "points": 1}
# *Model answer.* Each pooling (kernel 2, stride 2) gives 265 x 311, 132 x 155, 66 x 77, 33 x 38 and
# 16 x 19. Halving 265, 33 (rows) and 311, 155, 77 (columns) drops the odd last row or column. Upsampling
# 16 x 19 by 32 gives 512 x 608, not 530 x 622: the scores must be resized, or the input padded (FCN pads
# by 100 and crops), before they can be compared with the mask pixel by pixel.

# %% [markdown]
# 3. Repeat the round-trip experiment with `mode="nearest"`. By how much does bilinear interpolation
#    beat nearest neighbour at 1/32?

# %% [markdown] nbgrader={"grade_id": "nearest_vs_bilinear", "solution": true, "grade": true, "points": 1}
# *Model answer.* Bilinear wins by a few hundredths of Jaccard at 1/32: nearest neighbour turns each
# coarse cell into a 32 x 32 block, so the outline becomes a staircase, while bilinear interpolation
# places the 0.5 level between cells and follows a rounded outline more closely. Full marks for the two
# numbers measured and the difference explained.

# %% [markdown]
# 4. The bilinear transposed convolution and `F.interpolate(..., mode="bilinear")` gave slightly
#    different Jaccard values. Compare the two outputs pixel by pixel and find where they differ.

# %% [markdown] nbgrader={"grade_id": "transposed_vs_interpolate", "solution": true, "grade": true, "points": 1}
# *Model answer.* Inside the frame they agree (up to rounding); they differ along the border. The
# transposed convolution has no input beyond the edge, so the outermost pixels receive fewer kernel
# copies and fall towards 0, while `F.interpolate` (with `align_corners=False`) repeats the edge value.
