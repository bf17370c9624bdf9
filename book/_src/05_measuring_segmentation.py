# ---
# jupyter:
#   # Chapter 5, "Measuring segmentation": the source of book/05_measuring_segmentation.ipynb.
#   # Sync the notebook with `python book/_src/build.py 05`; see CONTRIBUTING.md.
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["colab-setup"]
# Set-up cell: written by scripts/setup_cell.py

# %% [markdown]
# # Measuring segmentation
#
# A segmentation network answers one question per pixel, so a single image yields hundreds of thousands of
# answers. This chapter turns those answers into a few honest numbers. It is written for readers who know what
# a confusion matrix is for an image classifier and want to see how the idea carries over to label maps.
#
# **Goals.** After this chapter you can
#
# * compute pixel accuracy and the Jaccard index (intersection over union) by hand from a confusion matrix,
#   and check the numbers against `fcn_tutorial.metrics.ConfusionMatrix`;
# * explain why pixel accuracy looks excellent for a model that never finds a polyp;
# * tell the whole-split Jaccard from the average of per-image Jaccard, and say which one you report;
# * keep void pixels out of every score with `ignore_index`.
#
# **Running this code.** Nothing here trains a network: the chapter runs in a few seconds on a laptop CPU.
# The first cell installs the package when the notebook runs on Colab and does nothing elsewhere; the next one
# shows the run-time profile (it matters only for [the training chapter](06_training.ipynb)).

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from fcn_tutorial.metrics import ConfusionMatrix, PerImageJaccard

plt.rcParams["figure.dpi"] = 100

# %% [markdown]
# ## A tiny label map, scored by hand
#
# Start with something small enough to count on paper: a $6 \times 8$ image with class 0 (background) and
# class 1 (polyp). The *target* is what an expert drew; the *prediction* is what a network outputs after
# taking the most likely class at every pixel.

# %%
# NBVAL_CHECK_OUTPUT
target = torch.zeros(6, 8, dtype=torch.int64)
target[1, 3:5] = 1
target[2:4, 2:6] = 1
target[4, 3:5] = 1

prediction = torch.zeros(6, 8, dtype=torch.int64)
prediction[1, 4:6] = 1
prediction[2:4, 3:7] = 1

print("target             prediction")
for target_row, prediction_row in zip(target.tolist(), prediction.tolist()):
    print(" ".join(map(str, target_row)), "   ", " ".join(map(str, prediction_row)))

# %% [markdown]
# The prediction found the polyp but placed it one column too far to the right and missed its bottom row.
# A picture makes the three kinds of mistake-or-not visible: hits (true positives), false alarms (false
# positives) and misses (false negatives).

# %% mystnb={"image": {"alt": "A small target mask, a prediction shifted one column and missing a row, and the outcome per pixel coloured as hits, false alarms and misses"}}
outcome = torch.zeros(6, 8, dtype=torch.int64)          # 0: background called background
outcome[(target == 1) & (prediction == 1)] = 1          # true positive
outcome[(target == 0) & (prediction == 1)] = 2          # false positive
outcome[(target == 1) & (prediction == 0)] = 3          # false negative

colours = ListedColormap(["#eeeeee", "#2a9d8f", "#e9c46a", "#e76f51"])
fig, axes = plt.subplots(1, 3, figsize=(9, 2.4))
axes[0].imshow(target, cmap="gray", vmin=0, vmax=1)
axes[1].imshow(prediction, cmap="gray", vmin=0, vmax=1)
axes[2].imshow(outcome, cmap=colours, vmin=0, vmax=3)
for ax, title in zip(axes, ["target", "prediction", "outcome per pixel"]):
    ax.set_title(title)
    ax.set_axis_off()
legend = [Patch(color=colours(i), label=name) for i, name in enumerate(["TN", "TP", "FP", "FN"])]
axes[2].legend(handles=legend, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
plt.show()
plt.close(fig)

# %% [markdown]
# Green pixels are hits, yellow ones false alarms, red ones misses, grey ones correctly rejected background.
# Every score below is a way of weighing these colours against each other.
#
# ### The confusion matrix
#
# Count, for every pair (true class $t$, predicted class $p$), how many pixels fall into it. The result is a
# $C \times C$ table, here $2 \times 2$, whose rows are the truth and whose columns are the prediction.

# %%
# NBVAL_CHECK_OUTPUT
n_classes = 2
confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
for t in range(n_classes):
    for p in range(n_classes):
        confusion[t, p] = ((target == t) & (prediction == p)).sum()
print(confusion)

# %% [markdown]
# Reading the table: 33 background pixels were called background, 3 background pixels were called polyp,
# 5 polyp pixels were missed and 7 were found. Every score in this chapter is a function of this table.
# (Looping over class pairs is fine for two classes; the package fills the table in one pass with
# `torch.bincount` over the combined index $C \cdot t + p$.)
#
# ### Pixel accuracy and the Jaccard index
#
# *Pixel accuracy* is the share of pixels on the diagonal:
#
# $$
# \text{accuracy} = \frac{\sum_c n_{cc}}{\sum_{t,p} n_{tp}}.
# $$
#
# The *Jaccard index* of class $c$, also called intersection over union (IoU), compares the set of pixels
# that *are* $c$ with the set of pixels *predicted* as $c$: the size of their intersection over the size of
# their union,
#
# $$
# J_c = \frac{|\,\text{true } c \cap \text{predicted } c\,|}{|\,\text{true } c \cup \text{predicted } c\,|}
#     = \frac{\text{TP}_c}{\text{TP}_c + \text{FP}_c + \text{FN}_c},
# $$
#
# where $\text{TP}_c = n_{cc}$ is the diagonal entry, $\text{FN}_c$ the rest of row $c$ and $\text{FP}_c$
# the rest of column $c$. The *mean Jaccard* averages $J_c$ over the classes. True negatives never enter
# $J_c$, and that is what makes it hard to flatter.

# %%
# NBVAL_CHECK_OUTPUT
true_positives = confusion.diag().double()
false_negatives = confusion.sum(dim=1) - true_positives   # rest of each row
false_positives = confusion.sum(dim=0) - true_positives   # rest of each column

accuracy = true_positives.sum() / confusion.sum()
jaccard = true_positives / (true_positives + false_positives + false_negatives)
print(f"pixel accuracy      {accuracy:.4f}   (40 / 48)")
print(f"Jaccard background  {jaccard[0]:.4f}   (33 / 41)")
print(f"Jaccard polyp       {jaccard[1]:.4f}   (7 / 15)")
print(f"mean Jaccard        {jaccard.mean():.4f}")

# %% [markdown]
# Five pixels in six are right, yet the predicted polyp and the real one overlap on less than half of their
# union. The two numbers answer different questions: accuracy asks "how many pixels are right?", Jaccard asks
# "how well does the predicted polyp coincide with the real one?".
#
# ### The same numbers from the package
#
# `ConfusionMatrix` accumulates the table over as many batches as you feed it (label maps `N x H x W`, or
# logits `N x C x H x W` from which it takes the arg-max) and `compute()` returns every score at once. It
# must agree with the hand count to the last digit.

# %%
# NBVAL_CHECK_OUTPUT
metric = ConfusionMatrix(n_classes=2, ignore_index=255)
metric.update(prediction[None], target[None])       # a batch of one image
scores = metric.compute()
print(scores.confusion)
print(f"pixel accuracy    {scores.pixel_accuracy:.4f}")
print("Jaccard per class", [round(float(j), 4) for j in scores.jaccard])
print(f"mean Jaccard      {scores.mean_jaccard:.4f}")
print("Dice per class   ", [round(float(d), 4) for d in scores.dice])

# %% [markdown]
# The package agrees. It also reports the *Dice* coefficient,
# $D_c = 2\,\text{TP}_c / (2\,\text{TP}_c + \text{FP}_c + \text{FN}_c)$, which is popular in medical imaging.
# For one class on one confusion matrix, Dice and Jaccard carry the same information, $D = 2J / (1 + J)$ (check
# it: $2 \cdot 0.4667 / 1.4667 = 0.6364$). Since $D$ grows with $J$, two models scored on the same pooled matrix
# rank the same way by either. Never compare a Dice from one paper with a Jaccard from another.
#
# That guarantee is lost as soon as scores are *averaged*: over images, or over classes for the mean Jaccard.
# The average of an increasing function is not an increasing function of the average. Two masks of 20 pixels
# each, half polyp, and two models: A is perfect on the first image and finds only 2 of the 10 polyp pixels of
# the second; B finds 6 and 5 of them, with no false alarm.

# %%
# NBVAL_CHECK_OUTPUT
truth = torch.zeros(2, 4, 5, dtype=torch.int64)
truth[:, :2] = 1                                        # 10 polyp pixels in each image
model_a, model_b = torch.zeros_like(truth), torch.zeros_like(truth)
model_a[0, :2] = 1                                      # image 1: all 10 found
model_a[1].view(-1)[:2] = 1                             # image 2: 2 of 10
model_b[0].view(-1)[:6] = 1                             # image 1: 6 of 10
model_b[1].view(-1)[:5] = 1                             # image 2: 5 of 10
for name, guess in [("A", model_a), ("B", model_b)]:
    pooled = ConfusionMatrix(n_classes=2)
    pooled.update(guess, truth)
    per_image = PerImageJaccard(n_classes=2)
    per_image.update(guess, truth)
    jaccards = per_image.compute()[:, 1]                # polyp Jaccard of each image
    dices = 2 * jaccards / (1 + jaccards)               # and its Dice
    whole = pooled.compute()
    print(f"model {name}  pooled: Jaccard {whole.jaccard[1]:.3f}, Dice {whole.dice[1]:.3f}"
          f"  |  per image: Jaccard {jaccards[0]:.2f}, {jaccards[1]:.2f} (mean {jaccards.mean():.3f}),"
          f" Dice {dices[0]:.3f}, {dices[1]:.3f} (mean {dices.mean():.3f})")

# %% [markdown]
# On the pooled matrix A beats B by both scores (Jaccard 0.600 against 0.550, Dice 0.750 against 0.710). Averaged
# over the two images, A still wins on Jaccard (0.600 against 0.550) but *loses* on Dice (0.667 against 0.708):
# Dice is kinder than Jaccard to a mediocre image (0.5 becomes 0.667) and less generous to a perfect one (1 stays
# 1). So a ranking by mean Dice over images (a common choice in medical papers) and a ranking by mean Jaccard can
# disagree, and the same holds for means over classes. Say which average you report, and compare like with like.
#
# ## Why accuracy flatters a model that misses polyps
#
# On real colonoscopy frames the polyp usually covers a small part of the picture. Load the validation
# frames of Kvasir-SEG {cite}`jha2020kvasir` (the data set of [the data chapter](03_data.ipynb)) and measure the
# share of polyp pixels in each mask.

# %%
from IPython.display import Markdown

from fcn_tutorial.data import load_polyp_data

data = load_polyp_data()
validation = data.val
if data.synthetic:
    display(Markdown(f"**Note: synthetic frames.** The real polyp data is not available here "
                     f"({data.reason}), so this chapter uses the package's synthetic polyps; the "
                     "numbers differ from the text."))
print(f"{data.name}: {len(validation)} validation frames")

# %%
from fcn_tutorial.data import read_mask

# Only the masks are needed here: read them without decoding the frames, and keep every second row and
# column (a quarter of the pixels, the same proportions) so that the cells below run in a few seconds.
masks = [read_mask(path, validation.lookup)[::2, ::2] for path in validation.mask_paths[:100]]
polyp_share = torch.tensor([(mask == 1).double().mean().item() for mask in masks])
print(f"{len(masks)} validation masks; polyp share of the pixels: "
      f"median {polyp_share.median():.3f}, mean {polyp_share.mean():.3f}, "
      f"below 5% in {(polyp_share < 0.05).sum()} frames")

# %% [markdown]
# A typical frame is mostly background. Now score the laziest possible "model", one that calls every pixel
# background, on these masks.

# %%
lazy = ConfusionMatrix(n_classes=2, ignore_index=255)
for mask in masks:
    lazy.update(torch.zeros_like(mask)[None], mask[None])
lazy_scores = lazy.compute()
print(f"all-background predictor: pixel accuracy {lazy_scores.pixel_accuracy:.3f}, "
      f"Jaccard background {lazy_scores.jaccard[0]:.3f}, polyp {lazy_scores.jaccard[1]:.3f}, "
      f"mean {lazy_scores.mean_jaccard:.3f}")

# %% [markdown]
# Just above 80% pixel accuracy without finding a single polyp. The polyp Jaccard is exactly zero: no
# true positives at all. The mean Jaccard lands near 0.41, which is why this number, not accuracy, is the
# one to beat. Keep this baseline in mind: in [the training chapter](06_training.ipynb) a trained network
# must be clearly better than it. The frames with the smallest polyps show why such a lazy model can
# look good on accuracy.

# %% mystnb={"image": {"alt": "Three frames with very small polyps, each titled with its polyp share and the high accuracy that calling everything background would get on it"}}
smallest = polyp_share.argsort()[:3].tolist()
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
for ax, index in zip(axes, smallest):
    image, mask = validation[index]
    ax.imshow(image.permute(1, 2, 0))
    ax.contour(mask == 1, levels=[0.5], colors="yellow", linewidths=1.5)
    ax.set_title(f"polyp share {polyp_share[index]:.3f}\n"
                 f"all-background accuracy {1 - polyp_share[index]:.3f}")
    ax.set_axis_off()
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# On these frames (polyp outlined in yellow) predicting "no polyp" is right for well over 95% of the pixels,
# and completely useless to the endoscopist.
#
# ## Whole-split versus per-image averaging
#
# There are two reasonable ways to summarise a split of many images:
#
# * **whole split**: add up one confusion matrix over every pixel of every image, then compute $J_c$ once.
#   This is what `ConfusionMatrix` does, what the original 2017 tutorial reported and what the FCN paper
#   {cite}`long2015fcn` calls mean IU;
# * **per image**: compute $J_c$ for every image, then average the numbers. `PerImageJaccard` does this.
#
# The first weighs each image by its number of polyp pixels, the second weighs every image equally. They
# differ most when a model does well on large polyps and badly on small ones. To see it, simulate such a model
# on the real masks: it misses every polyp that covers less than 4% of the frame, and outlines the others but
# shifted by 20 pixels in a random direction.

# %%
import math

generator = torch.Generator().manual_seed(0)
simulated = []
for mask, share in zip(masks, polyp_share):
    if share < 0.04:                                    # too small: this model misses it
        simulated.append(torch.zeros_like(mask))
        continue
    angle = 2 * math.pi * torch.rand(1, generator=generator).item()
    # 10 px of a half-size mask: 20 px at full size
    shift = (round(10 * math.sin(angle)), round(10 * math.cos(angle)))
    simulated.append((torch.roll(mask, shifts=shift, dims=(0, 1)) == 1).long())   # labels 0/1 only

whole_split = ConfusionMatrix(n_classes=2, ignore_index=255)
per_image = PerImageJaccard(n_classes=2, ignore_index=255)
for guess, mask in zip(simulated, masks):
    whole_split.update(guess[None], mask[None])
    per_image.update(guess[None], mask[None])
pooled = whole_split.compute().jaccard[1]
per_image_polyp = per_image.compute()[:, 1]           # images x classes -> the polyp column
print(f"polyp Jaccard, whole split:            {pooled:.3f}")
print(f"polyp Jaccard, mean over images:       {per_image_polyp.mean():.3f}")
print(f"polyp Jaccard, median over images:     {per_image_polyp.median():.3f}")

# %% [markdown]
# The same predictions get two different scores. The histogram and the scatter plot below show where the gap
# comes from.

# %% mystnb={"image": {"alt": "Left: histogram of the polyp Jaccard of each image, with the whole-split score and the mean per image marked. Right: each image's Jaccard against its polyp's size"}}
fig, (ax_hist, ax_size) = plt.subplots(1, 2, figsize=(10, 3.4))
ax_hist.hist(per_image_polyp, bins=20, range=(0, 1), color="#2a9d8f")
ax_hist.axvline(pooled, color="black", linestyle="--", label=f"whole split {pooled:.2f}")
ax_hist.axvline(per_image_polyp.mean(), color="#e76f51",
                label=f"mean per image {per_image_polyp.mean():.2f}")
ax_hist.set_xlabel("polyp Jaccard of one image")
ax_hist.set_ylabel("images")
ax_hist.yaxis.get_major_locator().set_params(integer=True)  # whole numbers of images
ax_hist.legend()
ax_size.scatter(polyp_share, per_image_polyp, s=12, color="#264653")
ax_size.set_xlabel("polyp share of the frame")
ax_size.set_ylabel("polyp Jaccard of the frame")
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# The missed small polyps form the bar at zero on the left and the row of dots at the bottom left on the right.
# In the whole-split table they hardly count: they hold few pixels, while the large polyps, which this model
# finds, contribute most of the polyp pixels. So the whole-split score sits well above the per-image mean.
# Neither number is wrong. The whole-split score says how many polyp pixels are found overall; the per-image
# distribution says how often the model fails a patient. Report which one you use, and look at the histogram,
# not only at its mean.
#
# ## Void pixels
#
# Some pixels should not count at all: the black border around the endoscope's circular view, or an area the
# expert could not label. The original polyp masks marked that border with its own value; in this package
# such pixels carry `fcn_tutorial.data.VOID = 255`, and `ConfusionMatrix(..., ignore_index=255)` leaves them
# out of the table. Mark the two right-most columns of the toy target as void, as if they lay outside the
# endoscope's view, and score the same prediction again.

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.data import VOID

target_with_void = target.clone()
target_with_void[:, -2:] = VOID

metric = ConfusionMatrix(n_classes=2, ignore_index=VOID)
metric.update(prediction[None], target_with_void[None])
scores = metric.compute()
print(scores.confusion)
print(f"pixels counted {int(scores.confusion.sum())} of {target.numel()}")
print(f"pixel accuracy {scores.pixel_accuracy:.4f}, polyp Jaccard {scores.jaccard[1]:.4f}")

# %% [markdown]
# The 12 void pixels vanished from the table: 10 of them were correctly rejected background and 2 were false
# alarms, which no longer count against the polyp (its Jaccard rises from 7/15 to 7/13). Whatever a model predicts on a void pixel, it can
# neither help nor hurt a score. The loss in [the training chapter](06_training.ipynb) ignores the same
# pixels, so the model is never asked to learn them.
#
# ## Summary
#
# * A confusion matrix counts pixels by (true class, predicted class); every score here comes from it.
# * Pixel accuracy rewards the large, easy background: on polyp frames a model that predicts nothing scores
#   above 0.8, while its polyp Jaccard is zero.
# * Jaccard (IoU) ignores true negatives and measures the overlap of prediction and truth for each class;
#   Dice is a monotone function of it, $D = 2J/(1+J)$, so on one pooled matrix both rank models alike; their
#   means over images (or over classes) can rank them differently.
# * Summing one confusion matrix over a split weighs large polyps more; averaging per-image Jaccard weighs
#   every frame equally. Say which one you report; this package and the original tutorial use the whole split.
# * Void pixels (value 255) are left out of the table, so they cannot change a score.
#
# ## Exercises
#
# 1. **The confusion matrix in one pass** (3 points). Write `confusion_matrix(prediction, target, n_classes,
#    ignore_index=255)` for two label maps of the same shape (any shape: one image or a batch). It returns the
#    `n_classes x n_classes` table of pixel counts (rows: truth, columns: prediction) *without* the void pixels,
#    without a Python loop over classes and without the package's `ConfusionMatrix`: combine each pixel's two
#    labels into one index $C \cdot t + p$ and count the indices with `torch.bincount`. A class that never
#    occurs keeps its row and column of zeros.

# %% nbgrader={"grade_id": "confusion_matrix", "solution": true}
def confusion_matrix(prediction: torch.Tensor, target: torch.Tensor, n_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """C x C pixel counts (rows: truth, columns: prediction) of the pixels with target != ignore_index."""
    ### BEGIN SOLUTION
    counted = target != ignore_index
    index = n_classes * target[counted] + prediction[counted]
    return torch.bincount(index, minlength=n_classes**2).reshape(n_classes, n_classes)
    ### END SOLUTION


# %% nbgrader={"grade_id": "confusion_matrix_test", "grade": true, "points": 3}
from fcn_tutorial import exercises

exercises.check_confusion_matrix(confusion_matrix)
### BEGIN HIDDEN TESTS
_generator = torch.Generator().manual_seed(7)
for _n_classes in [2, 4, 21]:
    _target = torch.randint(0, _n_classes, (3, 20, 24), generator=_generator)
    _target[:, :, :3] = 255
    _prediction = torch.randint(0, _n_classes, (3, 20, 24), generator=_generator)
    _reference = ConfusionMatrix(n_classes=_n_classes, ignore_index=255)
    _reference.update(_prediction, _target)
    _got = torch.as_tensor(confusion_matrix(_prediction, _target, _n_classes))
    assert torch.equal(_got.long(), _reference.compute().confusion.long()), f"{_n_classes} classes: wrong counts"
import inspect

assert "ConfusionMatrix" not in inspect.getsource(confusion_matrix), "count the pixels yourself, not with the package"
### END HIDDEN TESTS

# %% [markdown]
# 2. **Pixel accuracy** (2 points). Write `pixel_accuracy(prediction, target, ignore_index=255)` for two label
#    maps of the same shape: the share of non-void pixels where they agree. Do it directly on the label maps,
#    without building a confusion matrix.

# %% nbgrader={"grade_id": "pixel_accuracy", "solution": true}
def pixel_accuracy(prediction: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> float:
    """Share of the pixels with target != ignore_index where prediction == target."""
    ### BEGIN SOLUTION
    counted = target != ignore_index
    return (prediction[counted] == target[counted]).double().mean().item()
    ### END SOLUTION


# %% nbgrader={"grade_id": "pixel_accuracy_test", "grade": true, "points": 2}
exercises.check_pixel_accuracy(pixel_accuracy)
### BEGIN HIDDEN TESTS
_generator = torch.Generator().manual_seed(8)
_target = torch.randint(0, 3, (4, 16, 16), generator=_generator)
_target[_target == 2] = 255
_prediction = torch.randint(0, 2, (4, 16, 16), generator=_generator)
_reference = ConfusionMatrix(n_classes=2, ignore_index=255)
_reference.update(_prediction, _target)
_want = float(_reference.compute().pixel_accuracy)
assert abs(float(pixel_accuracy(_prediction, _target)) - _want) < 1e-6, f"pixel accuracy should be {_want:.4f}"
import inspect

_code = inspect.getsource(pixel_accuracy)
assert "ConfusionMatrix" not in _code and "confusion_matrix(" not in _code, "work on the label maps directly"
### END HIDDEN TESTS

# %% [markdown]
# Open questions: write your answer in the cell below each one.
#
# 3. **Think** (1 point). A model scores polyp Jaccard 0.80 over the whole validation split, but 0.55 when
#    averaged per image. What does that tell you about the polyps it fails on? Which plot from this chapter
#    would you draw to confirm it?

# %% [markdown] nbgrader={"grade_id": "split_vs_image", "solution": true, "grade": true, "points": 1}
# *Model answer.* The whole-split score pools the pixels, so large polyps dominate it; the per-image mean gives
# every frame the same weight. A much lower per-image mean means the model fails on many frames whose polyps
# are small (few pixels, little weight in the pooled table). Confirm it with the plot of per-image Jaccard
# against the polyp's size (its share of the frame): the failures sit at the small end.

# %% [markdown]
# 4. **Dice versus Jaccard** (2 points). Show from the definitions that $D = 2J/(1+J)$, and that $D \ge J$ with
#    equality only at 0 and 1.

# %% [markdown] nbgrader={"grade_id": "dice_jaccard", "solution": true, "grade": true, "points": 2}
# *Model answer.* With $U = \text{TP} + \text{FP} + \text{FN}$, $J = \text{TP}/U$ and
# $D = 2\text{TP}/(2\text{TP} + \text{FP} + \text{FN}) = 2\text{TP}/(U + \text{TP})$. Dividing numerator
# and denominator by $U$ gives $D = 2J/(1 + J)$. Then $D - J = J(1 - J)/(1 + J) \ge 0$ for $0 \le J \le 1$,
# and it is 0 only when $J = 0$ or $J = 1$.
