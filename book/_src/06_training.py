# Chapter 6, "Training on a GPU": the percent-format source of book/06_training.ipynb.
# Build with `python book/_src/build.py 06`, then execute the notebook in place.

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
#   cell. Expect about an hour per model on a recent data-centre GPU and several hours on Colab's free T4 (each
#   run stops early once its validation Jaccard has not improved for 30 epochs); an interrupted run resumes
#   where it stopped when you run the cell again.
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
%matplotlib inline
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
#   This is the original tutorial's loss: the sum over non-void pixels divided by their number. With class
#   weights, each pixel counts with the weight of its class instead.
# * A NaN or infinite loss stops training *before* the weights change, so the last checkpoint stays good. Under
#   `torchrun` the processes agree first (`all_reduce_sum`), so that all of them stop at the same batch.
# * `zero_grad`, `backward`, `step`: the usual three; with fp16 the gradient scaler wraps the last two.
# * The batch losses are added up in a float64 tensor and averaged at the end of the epoch, over every process
#   of a distributed run.
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
# The original tutorial trained FCN-8s {cite}`long2015fcn` from scratch, with Adam {cite}`kingma2015adam` at a
# learning rate of $10^{-4}$, batches of ten
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
# runs/original`. Each epoch ends with a log line in the original's format (one line in the log; `X` stands for
# a number):
#
# ```text
# EPOCH n: Avg epoch training cost train X, cost val X, acc val X,
#   jacc val class 0 X, jacc val class 1 X, jacc val X took X s
# ```
#
# and the run closes with a `FINAL MODEL: err test X, acc test X, jacc test class 0 X, jacc test class 1 X,
# jacc test X` line: the test scores of the best weights. The 2017 run took about 3.5 hours on an NVIDIA
# Titan X (12 GB), about 56 seconds per epoch. Its best epoch was epoch 221, with a validation mean Jaccard
# (`jacc val`) of 0.6439; the tutorial does not report the other numbers of that line. Its test scores on
# CVC-912 {cite}`vazquez2016benchmark`, with the weights of epoch 221:
#
# | split | pixel accuracy | Jaccard background | Jaccard polyp | mean Jaccard |
# |---|---|---|---|---|
# | test (CVC-912, 182 frames) | 0.9249 | 0.9412 | **0.4268** | 0.6840 |
#
# A polyp Jaccard of 0.43 means that, over the test split, the predicted and the true polyp pixels overlap on
# less than half of their union; the mean of 0.68 is lifted by the easy background, exactly the effect of
# [the metrics chapter](05_measuring_segmentation.ipynb). A second run of the same code stopped with a test
# polyp Jaccard of only 0.1865: training from scratch on 547 frames is fragile. Pretrained backbones, stronger
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
# On a CPU `auto` keeps full float32, because whether 16-bit arithmetic pays off depends on the CPU. On a CPU
# with native bfloat16 instructions (AVX-512 BF16 or AMX; `fcn_tutorial.train.cpu_supports_bf16()` tells you)
# it pays off handsomely: the README measured FCN-8s training 2.0 times faster with bf16 autocast than in
# float32 on the 2-core CPU these pages were built on. Ask for it explicitly with `amp="bf16"` (`--amp bf16` on
# the command line), which refuses to run on a CPU without native support; on such older CPUs bfloat16 is
# emulated and gains little. Colab's free T4 gets float16 with a scaler; an A100 or H100 gets bfloat16.
#
# ## Training FCN-32s, FCN-16s and FCN-8s
#
# Now the real thing. We train the three variants on the same frames with the settings of the current profile
# (in the quick profile: a network of a quarter of the width, frames resized to 128 pixels, about a minute per
# model on a laptop CPU). First the data:

# %%
data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note: synthetic frames.** The real polyp data is not available here ({data.reason}), "
                     "so the networks below train on the package's synthetic polyps."))
validation = data.val
print(f"{data.name}: {len(data.train)} training, {len(validation)} validation, {len(data.test)} test frames")

# %% [markdown]
# Next the settings. The full profile trains each variant with the profile's settings and stops early when the
# validation Jaccard has not improved for 30 epochs. The quick profile must fit three networks into about three
# minutes of a laptop CPU, so it changes three things:
#
# * an even narrower network, one eighth of VGG16's channels, trained for a fixed number of epochs (a fixed
#   count, unlike a time limit, gives the same result on a slow and on a fast machine);
# * batches of 4 instead of 8: twice as many weight updates for the same computation;
# * *class weights* `[1, 3]`: an error on a polyp pixel costs three times as much as one on a background pixel.
#   Polyps cover about 15% of the pixels, and a network trained from scratch first learns the cheap answer of
#   [the metrics chapter](05_measuring_segmentation.ipynb), "everything is background"; the weights push it past
#   that answer within the first epoch. The price is more false alarms, which lowers pixel accuracy.

# %%
RUNS = Path("runs") / profile.name
VARIANTS = {"FCN-32s": "fcn32s", "FCN-16s": "fcn16s", "FCN-8s": "fcn8s"}
QUICK_SETTINGS = dict(width=0.125, batch_size=4, epochs=5, time_limit=None)


def run_config(name: str) -> TrainConfig:
    """The TrainConfig of one variant: the profile's settings, this variant's network and its run folder."""
    if profile.name == "quick":
        options = profile.training_options(model=name, **QUICK_SETTINGS)
        return TrainConfig(data=data.name, out=str(RUNS / name), n_train=profile.n_train, n_eval=profile.n_eval,
                           cache=True, progress=False, patience=None, class_weights=[1.0, 3.0], **options)
    return TrainConfig(data=data.name, out=str(RUNS / name), n_train=profile.n_train, n_eval=profile.n_eval,
                       cache=True, progress=False, patience=30, **profile.training_options(model=name))

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.models import build_model, count_flops

for title, name in VARIANTS.items():
    config = run_config(name)
    with torch.device("meta"):                       # shapes only: see the architecture chapter
        network = build_model(name, 2, preset=config.preset, width=config.width)
    crop = config.crop_size or 224
    print(f"{title}: {config.preset} preset, width {config.width:g}, "
          f"{sum(p.numel() for p in network.parameters()):,} parameters, "
          f"{count_flops(network, (crop, crop)) / 1e9:.2f} GFLOPs per {crop} x {crop} crop, {config.epochs} epochs")

# %% [markdown]
# Each model trains into its own run folder under `runs/<profile>/`. The cell below is safe to re-run: a model
# whose run finished (its folder holds `test.json`, written at the very end) is not trained again, and a run
# that was interrupted (`last.pt` but no `test.json`) resumes where it stopped instead of starting over.

# %%


for title, name in VARIANTS.items():
    config = run_config(name)
    out = Path(config.out)
    if (out / "test.json").exists():
        first_line = (out / "train.log").read_text(encoding="utf-8").splitlines()[0]
        print(f"{title}: found a finished run in {out}, not training again (delete the folder to retrain).\n"
              f"  It started with: {first_line}")
        continue
    resume = (out / "last.pt").exists()
    print(f"{title}: {'resuming' if resume else 'training'} in {out} ({profile.name} profile on {profile.device})")
    train(config, resume=resume)

# %% [markdown]
# Every epoch printed one line in the 2017 format, and the same lines sit in each run's `train.log`. Here are
# the first and the last lines of the FCN-8s run:

# %%
log_lines = (RUNS / "fcn8s" / "train.log").read_text(encoding="utf-8").splitlines()
print("\n".join(log_lines[:3] + ["..."] + log_lines[-3:]))

# %% [markdown]
# ### The curves
#
# `history.csv` holds one row per epoch. `plot_history` draws the training and validation losses (left) and the
# validation Jaccard per class (right):

# %%
history = read_history(RUNS / "fcn8s" / "history.csv")
fig = plot_history(history, title=f"FCN-8s, {profile.name} profile on {profile.device}")
fig

# %% [markdown]
# What to look for: the training loss falls; the validation polyp Jaccard, zero for an untrained network that
# calls everything background (the lazy model of [the metrics chapter](05_measuring_segmentation.ipynb)), rises
# as the network learns to mark polyps. When the validation loss turns up while the training loss keeps falling,
# the model is overfitting, and the best weights (`best.pt`) come from before that point. A quick run is far
# too short to get there; a full run on a GPU shows the whole story. (In the quick profile the training loss lies
# above the validation loss for a simple reason: it is weighted, polyp errors counting three times, and the
# validation loss is not.)
#
# ### Scores against the all-background baseline
#
# Each variant's best weights are scored on the validation frames: whole-split Jaccard from one confusion matrix,
# and the Jaccard of every frame for the failure analysis below. The network sees each frame at the size it was
# trained on and its scores are resized to the full-size mask. The baseline calls every pixel background.

# %%
models, configs, whole_split, per_image = {}, {}, {}, {}
for title, name in VARIANTS.items():
    models[title], configs[title] = load_model(RUNS / name / "best.pt")
    whole_split[title] = ConfusionMatrix(n_classes=2, ignore_index=255)
    per_image[title] = PerImageJaccard(n_classes=2, ignore_index=255)

baseline = ConfusionMatrix(n_classes=2, ignore_index=255)
frames = [validation[i] for i in range(len(validation))]
for image, mask in frames:
    baseline.update(torch.zeros_like(mask), mask)
    for title, model in models.items():
        prediction = predict(model, image, size=configs[title].resize)
        whole_split[title].update(prediction, mask)
        per_image[title].update(prediction, mask)

print(f"{len(frames)} validation frames, {profile.name} profile on {profile.device}")
print(f"{'':15} {'accuracy':>9} {'J background':>13} {'J polyp':>8} {'mean J':>7} {'J polyp per image':>18}")
rows = {"all background": (baseline.compute(), None)}
rows.update({title: (whole_split[title].compute(), per_image[title].mean()[1]) for title in VARIANTS})
for title, (scores, polyp_per_image) in rows.items():
    per_image_text = "" if polyp_per_image is None else f"{polyp_per_image:.3f}"
    print(f"{title:15} {scores.pixel_accuracy:9.3f} {scores.jaccard[0]:13.3f} {scores.jaccard[1]:8.3f} "
          f"{scores.mean_jaccard:7.3f} {per_image_text:>18}")

# %% [markdown]
# All three networks find polyps: their polyp Jaccard is far above the baseline's zero, and so is their mean
# Jaccard. Their pixel accuracy tells a different story. In the quick profile it can be *lower* than the
# baseline's: the class weights make the networks mark too much as polyp, and every false alarm costs accuracy
# while the lazy model loses only the polyps. Judged by accuracy alone, calling everything background would win,
# which is exactly the trap of [the metrics chapter](05_measuring_segmentation.ipynb). The last column averages the
# polyp Jaccard over frames instead of pooling it over the split.
#
# ### Three variants, the same frames
#
# The skip connections should show in the masks: FCN-32s upsamples its scores 32-fold in one step and draws
# blobs; FCN-16s and FCN-8s add finer feature maps and follow the outline more closely.

# %%
examples = [0, len(frames) // 3, 2 * len(frames) // 3]
images = [frames[i][0] for i in examples]
masks = [frames[i][1] for i in examples]
predictions = {title: [predict(model, image, size=configs[title].resize) for image in images]
               for title, model in models.items()}
fig = show_predictions(images, masks, predictions)
plt.show()

# %% [markdown]
# Compare the three right-hand columns with the ground truth in the second. In the quick profile the networks are
# narrow and trained for about a minute each, so all three draw similar rounded blobs, and in so short a run the
# coarse FCN-32s can score as well as FCN-8s: the skips only pay off once the network has learned what a polyp
# edge looks like. A full-profile run on a GPU shows the sharper FCN-8s outlines that the paper reported.
#
# ### Failure cases
#
# A single score hides the frames a model gets wrong. Sort the validation frames by FCN-8s's polyp Jaccard and
# look at the worst three:

# %%
polyp_jaccard = per_image["FCN-8s"].values[:, 1]
worst = polyp_jaccard.argsort()[:3].tolist()
fig = show_predictions([frames[i][0] for i in worst], [frames[i][1] for i in worst],
                       {f"FCN-8s": [predict(models["FCN-8s"], frames[i][0], size=configs["FCN-8s"].resize)
                                    for i in worst]})
plt.show()
print("polyp Jaccard of these frames:", [round(float(polyp_jaccard[i]), 3) for i in worst])

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(polyp_jaccard, bins=20, range=(0, 1), color="#2a9d8f")
ax.set_xlabel("polyp Jaccard of one validation frame (FCN-8s)")
ax.set_ylabel("frames")
plt.show()

# %% [markdown]
# The worst frames show what a minute of training has taught: mostly *where* polyps tend to be. The quick
# networks mark a blob near the middle of the view, where many training polyps sit, and miss polyps at the edge
# entirely. The histogram shows how the frames spread between complete misses (the bar at 0) and reasonable
# overlaps. Longer training on a GPU teaches appearance as well; the failures that remain are then typically small
# or flat polyps, polyps whose colour is close to the surrounding mucosa, and reflections or instruments mistaken
# for polyp. They are where more data, augmentation or a pretrained backbone help first.
#
# ## The command line
#
# Everything above is also available without a notebook. The three commands share the run folder:
#
# ```bash
# # train (on a GPU: the full-size recipe; --preset original gives the 2017 recipe)
# fcn-tutorial train --data kvasir-seg --out runs/fcn8s --model fcn8s --preset paper --amp auto
# # continue an interrupted run exactly where it stopped
# fcn-tutorial train --resume runs/fcn8s
# # score the best weights on the test split: whole-split and per-image Jaccard
# fcn-tutorial evaluate runs/fcn8s/best.pt --split test
# # write a mask PNG and an overlay PNG for every image in a folder
# fcn-tutorial predict runs/fcn8s/best.pt my_frames/ --out predictions/
# ```
#
# `fcn-tutorial train --help` lists every option of `TrainConfig`, and `fcn-tutorial evaluate` prints the same
# whole-split and per-image scores as the table above. As a small check, segment two validation frames with the
# quick FCN-8s from the command line:

# %%
import subprocess
import sys

frames_to_segment = [str(path) for path in validation.image_paths[:2]]
command = [sys.executable, "-m", "fcn_tutorial", "predict", str(RUNS / "fcn8s" / "best.pt"), *frames_to_segment,
           "--out", str(RUNS / "predictions"), "--no-progress"]
print(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
print(sorted(path.name for path in (RUNS / "predictions").iterdir()))

# %% [markdown]
# ## Summary
#
# * The training loop of a segmentation network is a classification loop whose loss is the cross-entropy over
#   every non-void pixel; evaluation fills one confusion matrix over the split.
# * `TrainConfig.for_preset("original")` reproduces the 2017 recipe: Adam at $10^{-4}$, batches of ten mirrored
#   $224 \times 224$ crops, early stopping on the validation mean Jaccard. It reached a test polyp Jaccard of 0.43
#   after 3.5 hours on a Titan X.
# * Mixed precision runs the forward pass in 16 bits: bfloat16 needs nothing else, float16 needs a `GradScaler`.
#   `amp="auto"` picks bf16 or fp16 on a GPU and stays in float32 on a CPU.
# * Runs are folders (`config.json`, `history.csv`, `train.log`, `best.pt`, `last.pt`): an interrupted run
#   resumes, and a finished one is reused instead of retrained.
# * Judge a model by its polyp Jaccard against the all-background baseline, and look at its worst frames.
#
# ## Exercises
#
# 1. **One training step.** Write `training_step(model, optimizer, images, masks)` that performs one
#    optimisation step with the pixel-wise cross-entropy (void pixels, 255, ignored) and returns the loss of the
#    batch before the step.

# %% tags=["exercise"]
import torch.nn.functional as F


def training_step(model, optimizer, images, masks):
    """One optimisation step on a batch; returns the batch's loss (computed before the step)."""
    raise NotImplementedError("your code here")


# %% tags=["solution", "hide-cell"]
def training_step(model, optimizer, images, masks):
    """One optimisation step on a batch; returns the batch's loss (computed before the step)."""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), masks, ignore_index=255)
    loss.backward()
    optimizer.step()
    return loss.item()


# %% tags=["check"]
from fcn_tutorial.exercises import check_training_step

check_training_step(training_step)

# %% [markdown]
# 2. **A better recipe.** Train FCN-8s again with `pretrained_backbone=True, normalize=True` (ImageNet weights
#    for VGG16 need a download the first time) and compare the validation polyp Jaccard with the run above.
# 3. **Augmentation.** The original mirrored every crop (`hflip=1.0`), which adds no variety at all. Train with
#    `hflip=0.5, vflip=0.5, rotation=15` and compare the curves: does the gap between training and validation
#    loss shrink?
# 4. **Mixed precision.** On a GPU, time one epoch with `amp="none"` and with `amp="auto"`. Which format did
#    `precision_plan` pick for your GPU, and how much faster was the epoch?
