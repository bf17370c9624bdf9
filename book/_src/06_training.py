# Chapter 6, "Training on a GPU": the percent-format source of book/06_training.ipynb.
# Build with `python book/_src/04_06_build.py 06`, then execute the notebook in place.

# %% tags=["colab-setup"]
# Set-up cell: written by scripts/setup_cell.py

# %% [markdown]
# # Training on a GPU
#
# This chapter trains the networks of [the architecture chapter](04_fcn_architectures.ipynb) on real polyp
# frames and judges them with the scores of [the metrics chapter](05_measuring_segmentation.ipynb). It is
# written for readers who have trained an image classifier in PyTorch and want to see what changes when every
# pixel has a label.
#
# **Goals.** After this chapter you can
#
# * read the package's training loop line by line and say what each line is for;
# * reproduce the 2017 tutorial's recipe with one `TrainConfig` and read its log lines;
# * decide when mixed precision (bf16, or fp16 with a gradient scaler) is used and why;
# * train FCN-32s, FCN-16s and FCN-8s, plot their curves, compare their masks and find their failures;
# * run the same steps from the command line with `fcn-tutorial train`, `evaluate` and `predict`.
#
# **Running this code.** This chapter was written for two kinds of machine, chosen by the *profile*:
#
# * on **Colab or any machine with an NVIDIA GPU** the `full` profile trains the real recipe (full-size frames,
#   the full-width network). On Colab, choose *Runtime → Change runtime type → GPU* before running the first
#   cell. Expect tens of minutes per model rather than the 3.5 hours of 2017: GPUs have become much faster.
# * on a **laptop CPU** the `quick` profile trains a narrow network on small frames for about a minute per
#   model. The numbers are lower than a GPU run's, but the model clearly learns.
#
# Set `FCN_TUTORIAL_PROFILE=quick` or `full` to choose yourself. Every training cell first looks for a finished
# run in `runs/` and only trains when there is none, so running the chapter twice costs nothing the second time.

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %%
# %matplotlib inline
import inspect
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Code, Markdown

from fcn_tutorial import train as training
from fcn_tutorial.data import load_polyp_data
from fcn_tutorial.evaluate import load_model
from fcn_tutorial.history import plot_history, read_history
from fcn_tutorial.metrics import ConfusionMatrix, PerImageJaccard
from fcn_tutorial.plotting import show_predictions
from fcn_tutorial.predict import predict
from fcn_tutorial.train import TrainConfig, precision_plan, train

plt.rcParams["figure.dpi"] = 100
print(profile.describe())
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))

# %% [markdown]
# The line above is the hardware statement of this run: every result below was produced with this profile on
# this device. On a CPU it reads `profile quick on cpu`; on Colab with a GPU, `profile full on cuda`.
#
# ## The training loop
#
# Training a segmentation network is the loop you know from classification; only the loss is taken over
# pixels instead of images. The package's `train_one_epoch` is short enough to read in full:

# %%
Code(inspect.getsource(training.train_one_epoch), language="python")

# %% [markdown]
# Line by line:
#
# * `model.train()` switches dropout (after `fc6` and `fc7`) on; evaluation switches it off again.
# * `torch.autocast(...)` runs the forward pass in a lower precision when mixed precision is on (see below);
#   with `amp_dtype=None` it does nothing.
# * `segmentation_loss` is the pixel-wise cross-entropy, `F.cross_entropy(logits, masks, ignore_index=255)`:
#   the logits are `N x C x H x W`, the masks `N x H x W`, and every non-void pixel of the batch counts once.
#   This is the original tutorial's loss: the sum over non-void pixels divided by their number.
# * A NaN or infinite loss stops training *before* the weights change, so the last checkpoint stays good.
# * `zero_grad`, `backward`, `step`: the usual three; with fp16 the gradient scaler wraps the last two.
# * The losses are summed on the device and read back once per epoch, not once per batch: `loss.item()`
#   waits for the GPU, and doing it at every step slows a fast GPU down.
#
# `evaluate` is the mirror image: no gradients, dropout off, the confusion matrix of
# [the metrics chapter](05_measuring_segmentation.ipynb) filled over the whole split, and the loss averaged over
# every non-void pixel. When the network ran on resized frames, its scores are resized to the mask first, so the
# masks are always scored at the size they were drawn.

# %%
Code(inspect.getsource(training.evaluate), language="python")

# %% [markdown]
# Around these two functions, `train(config)` does the bookkeeping: it builds the data sets and the model from
# a `TrainConfig`, scores the validation split after every epoch, keeps the weights with the best validation
# Jaccard in `best.pt`, writes everything needed to resume in `last.pt` (atomically, after every epoch), appends
# a row to `history.csv`, and stops early when the validation Jaccard has not improved for `patience` epochs.
#
# ## The 2017 recipe
#
# The original tutorial trained FCN-8s from scratch, with Adam at a learning rate of $10^{-4}$, batches of ten
# $224 \times 224$ crops that were all mirrored, full-size validation frames one at a time, and early stopping
# after 100 epochs without a better validation mean Jaccard. The `original` preset brings all of it back:

# %%
# NBVAL_CHECK_OUTPUT
recipe = TrainConfig.for_preset("original", data="polyps912", out="runs/original")
for option in ["model", "preset", "width", "pretrained_backbone", "optimizer", "lr", "weight_decay", "batch_size",
               "eval_batch_size", "crop_size", "hflip", "normalize", "epochs", "patience", "monitor", "amp"]:
    print(f"{option:20} {getattr(recipe, option)}")

# %% [markdown]
# On the command line the same run is `fcn-tutorial train --preset original --data polyps912 --out
# runs/original`. Each epoch ends with a log line in the original's format, for example
#
# ```text
# EPOCH 221: Avg epoch training cost train 0.109..., cost val 0.221..., acc val 0.93..., jacc val class 0 0.94...,
#   jacc val class 1 0.35..., jacc val 0.64... took 56.2 s
# ```
#
# and the run closes with a `FINAL MODEL: ...` line: the test scores of the best weights. The 2017 run took
# about 3.5 hours on an NVIDIA Titan X (12 GB), about 56 seconds per epoch, and stopped at epoch 221:
#
# | split | pixel accuracy | Jaccard background | Jaccard polyp | mean Jaccard |
# |---|---|---|---|---|
# | test (CVC-912, 182 frames) | 0.925 | 0.941 | **0.427** | 0.684 |
#
# A polyp Jaccard of 0.43 means that, over the test split, the predicted and the true polyp pixels overlap on
# less than half of their union; the mean of 0.68 is lifted by the easy background, exactly the effect of
# [the metrics chapter](05_measuring_segmentation.ipynb). A second run of the same code stopped with a test
# polyp Jaccard of only 0.19: training from scratch on 547 frames is fragile. Pretrained backbones, stronger
# augmentation and a learning-rate schedule (all options of `TrainConfig`) do much better; see the exercises.
#
# ## Mixed precision
#
# A GPU multiplies 16-bit numbers several times faster than 32-bit ones. *Automatic mixed precision* runs the
# convolutions of the forward pass in 16 bits (inside `torch.autocast`) while the weights, the loss and the
# optimiser stay in 32 bits. There are two 16-bit formats:
#
# * **bfloat16** keeps float32's 8 exponent bits (same range, fewer digits), so small gradients do not vanish.
#   Recent GPUs (Ampere, e.g. A100, and newer) support it natively. Nothing else is needed.
# * **float16** has more digits but a much smaller range: gradients below about $6 \times 10^{-8}$ become zero.
#   A `GradScaler` multiplies the loss by a large factor before `backward()` so the gradients stay
#   representable, divides them again before the step, and skips a step (and lowers the factor) when a
#   gradient overflows.
#
# `TrainConfig(amp="auto")`, the full profile's choice, picks for you; `precision_plan` is the rule:

# %%
# NBVAL_CHECK_OUTPUT
cases = [("cuda", "auto", True, "an Ampere or newer GPU"), ("cuda", "auto", False, "an older GPU (T4, V100)"),
         ("cpu", "auto", True, "a CPU"), ("cuda", "none", True, "amp switched off")]
for device_type, amp, bf16, machine in cases:
    dtype, scaler = precision_plan(device_type, amp, bf16_supported=bf16)
    print(f"{machine:24} amp={amp:5} -> autocast {str(dtype or 'off (float32)'):16} GradScaler {scaler}")

# %% [markdown]
# On a CPU `auto` means full float32: CPUs gain little from 16-bit arithmetic, and the quick profile runs there.
# Colab's free T4 gets float16 with a scaler; an A100 or H100 gets bfloat16.
#
# ## Training FCN-32s, FCN-16s and FCN-8s
#
# Now the real thing. We train the three variants on the same frames with the settings of the current profile
# (in the quick profile: a network of a quarter of the width, frames resized to 128 pixels, about a minute per
# model on a laptop CPU). First the data:
