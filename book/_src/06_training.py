# ---
# jupyter:
#   # Chapter 6, "Training on a GPU": the source of book/06_training.ipynb.
#   # Sync the notebook with `python book/_src/build.py 06`; see CONTRIBUTING.md.
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

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
# * read the package's training loop and scoring function line by line and say what each line is for;
# * reproduce the 2017 tutorial's recipe with one `TrainConfig` and read its log lines;
# * decide when mixed precision (bf16, or fp16 with a gradient scaler) is used and why;
# * train FCN-32s, FCN-16s and FCN-8s the way the FCN paper did, one from the other, and judge them against a
#   baseline, on the whole split and frame by frame;
# * choose a two-class network's decision threshold on the validation split;
# * run the same steps from the command line with `fcn-tutorial train`, `threshold`, `evaluate` and `predict`,
#   on Colab with your runs safe on Google Drive.
#
# **Running this code.** This chapter was written for two kinds of machine, chosen by the *profile*:
#
# * on **Colab or any machine with an NVIDIA GPU** the `full` profile trains the full-width network from
#   ImageNet VGG16 weights at full resolution. On Colab, choose *Runtime → Change runtime type → GPU* before
#   running the first cell. Its cost is estimated, not measured, in the section *The full profile on a GPU*.
# * on a **CPU** the `quick` profile trains a narrow network on small frames: the three trainings together take
#   a few minutes on a 2-core laptop CPU, and every model shown below clearly beats the trivial baseline.
#
# Set `FCN_TUTORIAL_PROFILE=quick` or `full` to choose yourself. Every training cell first looks for a finished
# run and only trains when there is none, so running the chapter twice costs nothing the second time.

# %%
# %matplotlib inline
import inspect
import json
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Code, Markdown, display

from fcn_tutorial import engine, scoring
from fcn_tutorial.config import TrainConfig, runs_home
from fcn_tutorial.data import load_polyp_data
from fcn_tutorial.evaluate import load_model
from fcn_tutorial.history import plot_history, read_history
from fcn_tutorial.metrics import ConfusionMatrix, PerImageJaccard
from fcn_tutorial.plotting import show_predictions
from fcn_tutorial.precision import precision_plan
from fcn_tutorial.profiles import current_profile
from fcn_tutorial.run import train

plt.rcParams["figure.dpi"] = 100
profile = current_profile()
print(f"profile {profile.name} on {profile.device}")
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))

# %% [markdown]
# The line above is the hardware statement of this run: every result below was produced with this profile on
# this device. On a CPU it reads `profile quick on cpu`; on Colab with a GPU, `profile full on cuda`.
#
# ## The training loop
#
# Training a segmentation network is the loop you know from classification; only the loss is taken over
# pixels instead of images. The package's `train_one_epoch` (in `fcn_tutorial/engine.py`) is short enough to
# read in full:

# %%
Code(inspect.getsource(engine.train_one_epoch), language="python")

# %% [markdown]
# Line by line:
#
# * `model.train()` switches dropout (after `fc6` and `fc7`) and batch norm's running statistics on;
#   evaluation switches them off again.
# * `torch.autocast(...)` runs the forward pass in a lower precision when mixed precision is on (see below);
#   with `amp_dtype=None` it does nothing.
# * `segmentation_loss` is the pixel-wise cross-entropy, `F.cross_entropy(logits, masks, ignore_index=255)`:
#   the logits are `N x C x H x W`, the masks `N x H x W`, and every non-void pixel of the batch counts once.
#   This is the original tutorial's loss: the sum over non-void pixels divided by their number. With
#   `loss="ce+dice"` it adds `1 - Dice` of the polyp class, a soft Dice computed from the softmax probabilities
#   over the batch (`engine.dice_loss`), which weighs the polyp as a whole however few pixels it covers;
#   `"ce+dice-per-image"` (this chapter's quick profile and the CPU recipe below) computes that Dice for each
#   frame and averages, so a small polyp counts as much as a large one. `"ce+lovasz"` trains a convex
#   stand-in for each frame's Jaccard itself, the Lovász-softmax loss {cite}`berman2018lovasz`; on these frames
#   it did worse than Dice per frame ([the README's table of levers](https://github.com/fcn-tutorial/fcn-tutorial#what-each-lever-gave-30-minute-runs)).
# * A NaN or infinite loss stops training *before* the weights change, so the last checkpoint stays good. Under
#   `torchrun` the processes agree first (`all_reduce_sum`), so that all of them stop at the same batch.
# * `zero_grad`, `backward`, `step`: the usual three; with fp16 the gradient scaler wraps the last two.
# * The batch losses are added up in a float64 tensor and averaged at the end of the epoch, over every process
#   of a distributed run.
#
# Scoring is the mirror image, and the package has exactly one way to do it, `scoring.evaluate`: no gradients,
# dropout off, every frame brought to the size the network was trained on (the same antialiased resize as in
# training), its scores upsampled back to the frame's own size, and the confusion matrix of
# [the metrics chapter](05_measuring_segmentation.ipynb) filled over the whole split against the full-size mask.
# The command line's `evaluate`, a run's `val.json` and `test.json`, and every table of this chapter use it.

# %%
Code(inspect.getsource(scoring.evaluate), language="python")

# %% [markdown]
# Around these two functions, `train(config)` (in `fcn_tutorial/run.py`) does the bookkeeping: it builds the
# data sets and the model from a `TrainConfig`, scores the validation split after every epoch, keeps the
# weights with the best validation Jaccard in `best.pt`, writes everything needed to resume in `last.pt`
# (atomically, after every epoch), appends a row to `history.csv`, and stops early when the validation Jaccard
# has not improved for `patience` epochs. To save time it may score the per-epoch validation at the training
# size (the log and `history.csv` say so: `val_size`); the best epoch is always scored again at full size at the
# end, into `val.json` and `test.json`.
#
# ## The 2017 recipe
#
# The original tutorial trained FCN-8s {cite}`long2015fcn` from scratch, with Adam {cite}`kingma2015adam` at a
# learning rate of $10^{-4}$, batches of ten $224 \times 224$ crops that were all mirrored, full-size validation
# frames one at a time, and early stopping after 100 epochs without a better validation mean Jaccard. The
# `original` recipe brings all of it back, as a set of `TrainConfig` values:

# %%
# NBVAL_CHECK_OUTPUT
recipe = TrainConfig.for_recipe("original", data="polyps912", out="runs/original")
for option in ["model", "preset", "width", "pretrained_backbone", "optimizer", "lr", "weight_decay",
               "batch_size", "eval_batch_size", "crop_size", "hflip", "normalize", "epochs", "patience",
               "monitor", "amp"]:
    print(f"{option:20} {getattr(recipe, option)}")

# %% [markdown]
# On the command line the same run is `fcn-tutorial train --recipe original --data polyps912 --out
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
# Titan X (12 GB), about 56 seconds per epoch, and stopped at epoch 221 with a validation mean Jaccard
# (`jacc val`) of 0.6439; the tutorial does not report the other numbers of that line. Its test scores on
# CVC-912 {cite}`vazquez2016benchmark`, with its best weights:
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
cases = [("cuda", "auto", True, "an Ampere or newer GPU"),
         ("cuda", "auto", False, "an older GPU (T4, V100)"),
         ("cpu", "auto", True, "a CPU with native bf16"), ("cpu", "auto", False, "an older CPU"),
         ("cuda", "none", True, "amp switched off")]
for device_type, amp, bf16, machine in cases:
    dtype, scaler = precision_plan(device_type, amp, bf16_supported=bf16)
    print(f"{machine:24} amp={amp:5} -> autocast {str(dtype or 'off (float32)'):16} GradScaler {scaler}")

# %% [markdown]
# On a CPU, `auto` picks bfloat16 where the CPU has native bfloat16 instructions (AVX-512 BF16 or AMX;
# `fcn_tutorial.precision.cpu_supports_bf16()` tells you). There it pays off handsomely: [the README](https://github.com/fcn-tutorial/fcn-tutorial#speed) measured
# FCN-8s training 2.0 times faster with bf16 autocast than in float32 on the 2-core CPU these pages were built
# on. On older CPUs bfloat16 is emulated and gains little, so `auto` stays in float32 there. `amp="none"` always
# trains in float32, as the 2017 recipe did. Colab's free T4 gets float16 with a scaler; an A100 or H100 gets
# bfloat16.

# %% [markdown]
# ## Training FCN-32s, FCN-16s and FCN-8s
#
# Long, Shelhamer and Darrell did not train their three networks independently {cite}`long2015fcn`. They
# trained FCN-32s first; FCN-16s then *started from the trained FCN-32s*, its new score layer (`score_pool4`)
# set to zero so that the skip adds nothing at first; and FCN-8s started from the trained FCN-16s in the same
# way, with a new `score_pool3`. Each stage only has to learn what its finer skip adds. The start is close to
# the coarser network, not equal to it: the new stage's upsampling layers are new too (FCN-16s upsamples by 2
# and then 16 where FCN-32s upsampled by 32 at once), and they start as bilinear interpolation, while the
# coarser network had trained its own. We do the same, with `TrainConfig(init_from=...)`, which calls
# `fcn_tutorial.models.staged.init_from_coarser`:

# %%
from fcn_tutorial.models import staged

Code(inspect.getsource(staged.init_from_coarser), language="python")

# %% [markdown]
# Staging changes what the comparison below means. FCN-8s is not a network trained for as long as FCN-32s with
# one more skip: it has had the FCN-32s stage and the FCN-16s stage *and* its own. The table below therefore
# compares the three stages of one training, as the paper's table did, not three architectures given the same
# budget. To see that other comparison, train FCN-8s with `init_from=None` for as many epochs as the three
# stages together.
#
# First the data: the chapter trains on the training split and judges on the validation split. Nothing is
# chosen on the test split: as in 2017, each run scores it once at the end, with the weights that validation
# chose (the `FINAL MODEL` line and `test.json`), and the chapter only looks at validation.

# %%
data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note: synthetic frames.** The real polyp data is not available here "
                     f"({data.reason}), so the networks below train on the package's synthetic polyps."))
validation = data.val
print(f"{data.name}: {len(data.train)} training, {len(validation)} validation, "
      f"{len(data.test)} test frames")

# %% [markdown]
# Next the settings. A profile is a set of `TrainConfig` values; `profile.stage_config(...)` adds each stage's
# own (its network, its epochs and learning rate, and the run it starts from). On a CPU the quick profile uses
# what makes training from scratch work there: batch norm after every convolution, bfloat16 autocast where the
# CPU has native support for it, a cosine learning-rate schedule, and frames decoded and resized once and kept
# in memory. The cell prints every value that differs from `TrainConfig`'s defaults, so what you read is what ran:

# %%
RUNS = runs_home() / f"chapter6-{profile.name}"
VARIANTS = {"FCN-32s": "fcn32s", "FCN-16s": "fcn16s", "FCN-8s": "fcn8s"}


def stage_config(name: str, coarser: str | None) -> TrainConfig:
    """The TrainConfig of one stage: the profile's values, this variant's, and the run it starts from."""
    init_from = str(RUNS / coarser / "best.pt") if coarser else None
    return profile.stage_config(name, data=data.name, out=str(RUNS / name), init_from=init_from,
                                progress=False)


configs, coarser = {}, None
for title, name in VARIANTS.items():
    configs[title], coarser = stage_config(name, coarser), name

defaults = asdict(TrainConfig())
for title, config in configs.items():
    changed = {key: value for key, value in asdict(config).items()
               if (value != defaults[key] or key in ("model", "amp")) and key != "out"}
    print(f"{title}: " + ", ".join(f"{key}={value}" for key, value in changed.items()))

# %% [markdown]
# Each stage trains into its own run folder under `RUNS` (by default `runs/chapter6-<profile>` beside the
# notebook; set `FCN_TUTORIAL_RUNS` to put runs elsewhere, for example on Google Drive, see below). The cell is
# safe to re-run: a stage whose run finished (its folder holds `val.json`, written when training has ended and
# the best epoch is scored) is not trained again, and a run that was interrupted (`last.pt` but no `val.json`) resumes where it stopped.

# %% tags=["wrap-output"]
import time

for title, config in configs.items():
    out = Path(config.out)
    if (out / "val.json").exists():
        print(f"{title}: found a finished run in {out}, not training again "
              "(delete the folder to retrain).")
        continue
    resume = (out / "last.pt").exists()
    started = time.perf_counter()
    train(config, resume=resume)
    seconds = time.perf_counter() - started
    print(f"{title}: {'resumed and finished' if resume else 'trained'} in {seconds:.0f} s "
          f"({profile.name} profile on {profile.device})")

# %% [markdown]
# Every epoch wrote one line in the 2017 format to the run's `train.log`. Here are the first and the last lines
# of the FCN-8s stage:

# %% tags=["wrap-output"]
log_lines = (RUNS / "fcn8s" / "train.log").read_text(encoding="utf-8").splitlines()
print("\n".join(log_lines[:3] + ["..."] + log_lines[-3:]))

# %% [markdown]
# ### The curves
#
# `history.csv` holds one row per epoch. `plot_history` draws the training and validation losses (left) and
# the validation Jaccard per class (right); here the three stages one after the other, FCN-16s continuing where
# FCN-32s stopped and FCN-8s where FCN-16s stopped. The two losses are not the same quantity: training
# minimises cross-entropy + Dice per frame, while validation reports the cross-entropy alone, so compare the
# shape of each curve, not their heights:

# %% mystnb={"image": {"alt": "Training curves of the three stages one after the other: the training and validation losses fall within each stage, and the validation polyp Jaccard rises from FCN-32s to FCN-8s"}}
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
offset = 0
for (title, name), colour in zip(VARIANTS.items(), ["tab:blue", "tab:orange", "tab:green"]):
    history = read_history(RUNS / name / "history.csv")
    epochs = [offset + row["epoch"] for row in history]
    axes[0].plot(epochs, [row["train_loss"] for row in history], color=colour, label=title)
    axes[0].plot(epochs, [row["val_loss"] for row in history], "--", color=colour)
    axes[1].plot(epochs, [row["val_jaccard_1"] for row in history], marker="o", markersize=3,
                 color=colour, label=title)
    offset = epochs[-1]
axes[0].plot([], [], "k-", label="training (CE + Dice)")
axes[0].plot([], [], "k--", label="validation (CE)")
axes[0].set(xlabel="epoch (stages one after the other)", ylabel="loss")
axes[1].set(xlabel="epoch (stages one after the other)", ylabel="validation polyp Jaccard", ylim=(0, 1))
axes[0].legend(fontsize=8, loc="upper right")
axes[1].legend(fontsize=8, loc="upper left")
fig.suptitle(f"staged training, {profile.name} profile on {profile.device}")
fig.tight_layout()
plt.show()

# %% [markdown]
# What to look for: the training loss falls within each stage; the validation polyp Jaccard, zero for an
# untrained network that calls everything background (the lazy model of
# [the metrics chapter](05_measuring_segmentation.ipynb)), rises as the network learns to mark polyps. Each
# later stage starts where the previous one ended, because its new skip starts at zero, and improves on it. When
# the validation loss turns up while the training loss keeps falling, the model overfits, and `best.pt` keeps
# the weights from before.
#
# ### Scores against the all-background baseline
#
# Each stage's best weights were scored at the end of its run on the full-size masks of every validation
# frame, by the scoring function above, into `val.json`. The baseline calls every pixel background.

# %%
baseline = ConfusionMatrix(n_classes=2, ignore_index=255)
for _, mask in validation:
    baseline.update(torch.zeros_like(mask), mask)
baseline = baseline.compute()

results = {title: json.loads((RUNS / name / "val.json").read_text()) for title, name in VARIANTS.items()}
print(f"{len(validation)} validation frames at full size, {profile.name} profile on {profile.device}")
print(f"{'':15} {'accuracy':>9} {'J background':>13} {'J polyp':>8} {'mean J':>7} "
      f"{'J polyp per image':>18}")
print(f"{'all background':15} {baseline.pixel_accuracy:9.3f} {baseline.jaccard[0]:13.3f} "
      f"{baseline.jaccard[1]:8.3f} {baseline.mean_jaccard:7.3f}")
for title, r in results.items():
    print(f"{title:15} {r['pixel_accuracy']:9.3f} {r['jaccard'][0]:13.3f} {r['jaccard'][1]:8.3f} "
          f"{r['mean_jaccard']:7.3f} {r['per_image_jaccard'][1]:18.3f}")

# %% [markdown]
# The numbers depend on the machine only through the profile; the conclusions should not. The next cell states
# them in words, and the book's tests check that they hold:

# %%
# NBVAL_CHECK_OUTPUT
for title, r in results.items():
    print(f"{title} beats the all-background baseline in pixel accuracy: "
          f"{r['pixel_accuracy'] > baseline.pixel_accuracy}")
print("every stage finds polyps (polyp Jaccard above the baseline's 0):",
      all(r["jaccard"][1] > baseline.jaccard[1] for r in results.values()))
print("each stage improves on the one it started from:",
      results["FCN-16s"]["jaccard"][1] >= results["FCN-32s"]["jaccard"][1]
      and results["FCN-8s"]["jaccard"][1] >= results["FCN-16s"]["jaccard"][1])

# %% [markdown]
# All three networks find polyps, and all three beat the lazy model on its own ground, pixel accuracy. The
# polyp Jaccard tells the story that accuracy hides: the baseline's is zero. The last column averages the polyp
# Jaccard over frames instead of pooling it over the split; it weighs a small polyp as much as a large one.
#
# ### Three stages, the same frames
#
# The skips should show in the masks: FCN-32s upsamples its scores 32-fold in one step and draws blobs; FCN-16s
# and FCN-8s add finer feature maps and follow the outline more closely. Every prediction below goes through
# `scoring.predict`, the same path as the scores above.

# %% mystnb={"image": {"alt": "Validation frames with their true masks and the masks predicted by FCN-32s, FCN-16s and FCN-8s"}}
models = {title: load_model(RUNS / name / "best.pt", device="cpu") for title, name in VARIANTS.items()}


def segment(title: str, image: torch.Tensor) -> torch.Tensor:
    model, config = models[title]
    return scoring.predict(model, image, size=config.resize, normalize=config.normalize)


frames = [validation[i] for i in range(len(validation))]
examples = [0, len(frames) // 3, 2 * len(frames) // 3]
fig = show_predictions([frames[i][0] for i in examples], [frames[i][1] for i in examples],
                       {title: [segment(title, frames[i][0]) for i in examples] for title in VARIANTS})
plt.show()

# %% [markdown]
# Compare the three right-hand columns with the ground truth in the second column. The masks follow the polyps:
# they sit where the polyps are, not in the middle of every frame. FCN-32s's edges are the coarsest; the finer
# stages add detail along the outline and drop some false alarms.
#
# ### Failure cases
#
# A single score hides the frames a model gets wrong. Score every validation frame on its own with
# `PerImageJaccard`, sort by FCN-8s's polyp Jaccard and look at the worst three:

# %% mystnb={"image": {"alt": "The three validation frames on which FCN-8s scores lowest, with their true masks and the predictions"}}
per_image = PerImageJaccard(n_classes=2, ignore_index=255)
for image, mask in frames:
    per_image.update(segment("FCN-8s", image), mask)
polyp_jaccard = per_image.values[:, 1]
worst = polyp_jaccard.argsort()[:3].tolist()
fig = show_predictions([frames[i][0] for i in worst], [frames[i][1] for i in worst],
                       {"FCN-8s": [segment("FCN-8s", frames[i][0]) for i in worst]})
plt.show()
print("polyp Jaccard of these frames:", [round(float(polyp_jaccard[i]), 3) for i in worst])

# %% mystnb={"image": {"alt": "Histogram of FCN-8s's polyp Jaccard on each validation frame"}}
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(polyp_jaccard.numpy(), bins=20, range=(0, 1), color="#2a9d8f")
ax.set_xlabel("polyp Jaccard of one validation frame (FCN-8s)")
ax.set_ylabel("frames")
plt.show()

# %% [markdown]
# The histogram shows how the frames spread between misses and good overlaps. The worst frames are typical of
# what a small network trained for minutes gets wrong: small or flat polyps, polyps whose colour is close to the
# surrounding mucosa, and reflections or instruments mistaken for polyp. They are where more data, stronger
# augmentation, more training or a pretrained backbone help first.

# %% [markdown]
# ### The decision threshold
#
# `scoring.predict` calls a pixel polyp when the network gives polyp the larger of its two scores, that is when
# the softmax probability of polyp is above 0.5. Nothing makes 0.5 the best line to draw. Polyps cover a small
# share of the pixels, and a network trained on such frames tends to hedge at a polyp's rim, where its
# polyp probability often stays below 0.5: its masks come out a little too small. A threshold is a setting like
# the learning rate, so it is chosen on the validation split, never on the test split.
#
# Trying a threshold needs no new pass through the network. `fcn_tutorial.threshold.ThresholdSweep` runs the
# network once over the split and counts, for every frame, how many polyp and background pixels fall between
# two neighbouring thresholds; the confusion matrix at every threshold from 0.05 to 0.95 follows from those
# counts. `scoring.decide` is the rule it counts:

# %%
from fcn_tutorial.threshold import plot_sweep, sweep_dataset

Code(inspect.getsource(scoring.decide), language="python")

# %% mystnb={"image": {"alt": "Validation polyp Jaccard against the decision threshold, over the whole split and per image, with 0.5 and the best threshold marked"}}
model, config = models["FCN-8s"]
sweep = sweep_dataset(model, validation, "cpu", input_size=config.resize, normalize=config.normalize,
                      progress=False).report()
at_half = sweep["jaccard"][sweep["thresholds"].index(0.5)]
at_best = sweep["jaccard"][sweep["thresholds"].index(sweep["best"])]
print(f"FCN-8s, validation polyp Jaccard: {at_half:.3f} at 0.5 (the argmax), "
      f"{at_best:.3f} at {sweep['best']}, the threshold validation prefers")
fig = plot_sweep(sweep, title=f"FCN-8s ({profile.name} profile), {len(validation)} validation frames")
plt.show()

# %% [markdown]
# The curve is flat near its top: thresholds a little either side of the best one score almost the same, so
# the choice is robust rather than lucky. Far from it the score falls: at a low threshold hazy patches of
# mucosa around the polyp become polyp too, at a high one only the polyp's core survives. The per-image curve
# need not peak at the same place as the whole-split one. The whole-split score counts pixels, so it is ruled by
# the large polyps, and a low threshold that draws them whole pays off there. The per-image mean counts every
# frame once, and on a frame with a small polyp, or none found, the hazy pixels that a low threshold adds
# around it cost more than they gain. The command line does the same for a checkpoint, and `evaluate` and
# `predict` take the chosen value:
#
# ```bash
# fcn-tutorial threshold runs/kvasir-cpu/best.pt --split val --tta --plot threshold.png
# fcn-tutorial evaluate runs/kvasir-cpu/best.pt --split test --tta --threshold 0.3
# ```

# %% [markdown]
# ## Thirty minutes on a CPU
#
# The quick profile trains for minutes. Given half an hour, the same kind of network does much better. The
# runs below are [the README's CPU recipe](https://github.com/fcn-tutorial/fcn-tutorial#a-cpu-quality-run-on-real-kvasir-seg-issue-10): FCN-8s trained from scratch (compact preset, a quarter of VGG16's
# width, batch norm, bfloat16) on all 657 training frames resized to a shorter side of 256 pixels, with flips
# and zooms, cross-entropy + Dice per frame, Adam with a cosine schedule of 100 epochs, and a moving average of
# the weights; to save time it validates every other epoch (`--val-every 2`, so the curves have a point every
# two epochs) and updates the average every fourth step (`--ema-every 4`). Then the two steps of the previous
# section: the decision threshold is chosen on the validation frames, and the test frames are scored with it,
# with flip test-time augmentation.
#
# `benchmarks/quality.py` ran this recipe with several seeds, on the 2-core CPU that built this book, and wrote
# what it measured into one JSON file per seed in the book's `results/` folder. This page reads those files
# instead of training again, and writes seed 0's command back from the settings stored with it
# (`train_command` leaves out the options at their defaults, such as `--seed 0`):

# %% mystnb={"image": {"alt": "Loss and validation Jaccard curves of the 30-minute CPU recipe over 100 epochs, seed 0"}}
from fcn_tutorial.data.download import download_file

RESULTS, SEEDS = Path("results") / "cpu-30min", (0, 1, 2)
for seed in SEEDS:  # opened without the repository (on Colab): fetch them from the book's repository
    if not (RESULTS / f"seed{seed}.json").is_file():
        download_file(f"{BOOK_FILES}/results/cpu-30min/seed{seed}.json", RESULTS / f"seed{seed}.json",
                      progress=False)
quality = {seed: json.loads((RESULTS / f"seed{seed}.json").read_text(encoding="utf-8"))
           for seed in SEEDS}
from fcn_tutorial.config import train_command

print(train_command(TrainConfig(**{**quality[0]["settings"], "out": "runs/kvasir-cpu"}), width=78))
print("fcn-tutorial threshold runs/kvasir-cpu/best.pt --split val --tta")
print("fcn-tutorial evaluate runs/kvasir-cpu/best.pt --split test --tta --threshold",
      quality[0]["threshold"])
print("on:", quality[0]["machine"]["cpu"], f"({quality[0]['machine']['cores']} cores)")
fig = plot_history(quality[0]["history"],
                   title="FCN-8s, compact, width 0.25: the 30-minute CPU recipe, seed 0")
fig

# %%
COLUMNS = [("val", "val", "jaccard"), ("test", "test_tta_threshold", "jaccard"),
           ("per image", "test_tta_threshold", "per_image_jaccard"), ("at 0.5", "test_tta", "jaccard")]
print(f"{'seed':>4} {'epochs':>6} {'minutes':>7} {'best':>4} {'threshold':>9}   {'val J':>5}"
      f"   {'test J':>6} {'per image':>9}   {'test J at 0.5':>13}")
for seed, q in quality.items():
    row = [q["scores"][split][metric][1] for _, split, metric in COLUMNS]
    print(f"{seed:4} {q['epochs_done']:6} {q['recipe_s'] / 60:7.1f} {q['best_epoch']:4}"
          f" {q['threshold']:9.2f}   {row[0]:5.3f}   {row[1]:6.3f} {row[2]:9.3f}   {row[3]:13.3f}")
mean = [sum(q["scores"][split][metric][1] for q in quality.values()) / len(quality)
        for _, split, metric in COLUMNS]
print(f"{'mean':>4} {'':6} {'':7} {'':4} {'':9}   {mean[0]:5.3f}   {mean[1]:6.3f} {mean[2]:9.3f}"
      f"   {mean[3]:13.3f}")
gains = [q["scores"]["test_tta_threshold"]["jaccard"][1] - q["scores"]["test_tta"]["jaccard"][1]
         for q in quality.values()]
print(f"the threshold chosen on validation changed test polyp J by {min(gains):+.3f} "
      f"to {max(gains):+.3f}")

# %% [markdown]
# Each row is one seed: the epochs that fitted, the minutes from reading the frames to the test scores
# (choosing the threshold included), the epoch that validation chose, the threshold that validation chose, the
# validation polyp Jaccard of that epoch's weight average, and the test polyp Jaccard over the whole split and
# averaged image by image, with flip test-time augmentation; the last column is the test split at the argmax's
# 0.5. The last line compares those two test columns: the threshold that validation chose helped every seed.
#
# The curves show what the quick profile only begins: the validation polyp Jaccard climbs for tens of
# epochs while the training loss falls, then flattens as the cosine schedule brings the learning rate to zero.
# Its first dozen epochs at zero are not a network that learns nothing: validation scores the moving average
# of the weights, and with a decay of 0.998 that average spans about 500 steps (six epochs) and starts from
# the random first weights, so it calls every pixel background until the average has caught up.
#
# The seeds differ by a few hundredths on both splits: with 78 validation and 66 test frames, a few hard
# polyps found or missed shift the whole-split Jaccard that much. That is why the recipe was run with several
# seeds, and why a change is worth keeping only when it beats this spread or wins seed by seed (Dice per
# frame, in the README's notes, won on validation for every seed). Frames from other hospitals will
# probably score lower: the split is by frame, not by patient. The README's notes list what else was tried in
# the same half hour and what each change gave:
# [what each lever gave](https://github.com/fcn-tutorial/fcn-tutorial#what-each-lever-gave-30-minute-runs).
#
# ## Training on Colab
#
# On Colab every chapter starts with a set-up cell that installs this book's package; then *Runtime → Change
# runtime type → GPU* gives the `full` profile. A Colab session can end at any moment (an idle timeout, a
# lost connection), and with it the files of the session. Put the runs on your Google Drive, so that they
# survive:
#
# ```python
# from google.colab import drive
# drive.mount("/content/drive")
# import os
# os.environ["FCN_TUTORIAL_RUNS"] = "/content/drive/MyDrive/fcn-tutorial-runs"   # before the training cell
# ```
#
# Every run writes `last.pt` after each epoch, atomically, so a disconnect loses at most the epoch in progress.
# After reconnecting, run the set-up cell, the Drive cell and the training cell again: a finished stage is
# skipped and an interrupted one resumes from its `last.pt`. On the command line that is
# `fcn-tutorial train --resume /content/drive/MyDrive/fcn-tutorial-runs/<run>`.
#
# ## The full profile on a GPU
#
# The full profile starts from ImageNet VGG16 weights {cite}`simonyan2015vgg` (`pretrained_backbone=True`, with
# `normalize=True`), as the FCN paper and most practical segmentation work do. Its settings:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.profiles import current_profile as _profile

full = _profile("full", device="cuda")
for name in VARIANTS.values():
    config = full.stage_config(name, data="kvasir-seg", out=f"runs/{name}")
    print(f"{name}: preset {config.preset}, width {config.width:g}, "
          f"pretrained {config.pretrained_backbone}, normalize {config.normalize}, "
          f"crop {config.crop_size}, batch {config.batch_size}, "
          f"epochs {config.epochs}, patience {config.patience}, lr {config.lr:g}, amp {config.amp}")
print(full.estimate)

# %% [markdown]
# **This profile was not run on the machine that built these pages**: it has no GPU. The estimate above comes
# from the network's FLOP count (`fcn_tutorial.models.count_flops`, the table of
# [the architecture chapter](04_fcn_architectures.ipynb)), three times the forward pass for a training step,
# and an assumed sustained 8 TFLOP/s on a T4 in float16 (about an eighth of its tensor-core peak); data loading
# and validation are not in it. Treat it as an order of magnitude, and let `history.csv`'s `seconds` column give
# you the real figure after the first epochs.
#
# ## The command line
#
# Everything above is also available without a notebook. The full profile's three stages are three
# `fcn-tutorial train` commands; `fcn_tutorial.config.train_command` writes them from the profile's own values
# (only the options that differ from the defaults), so they train exactly what the notebook trains on a GPU:

# %%
# NBVAL_CHECK_OUTPUT
from fcn_tutorial.config import train_command

coarser = None
for name in VARIANTS.values():
    config = full.stage_config(name, data="kvasir-seg", download=coarser is None, out=f"runs/{name}",
                               init_from=f"runs/{coarser}/best.pt" if coarser else None)
    print(train_command(config, width=78))
    coarser = name

# %% [markdown]
# Each stage starts from the previous one's best weights (`--init-from`); `--recipe original` gives the 2017
# recipe instead. The other commands share the run folder:
#
# ```bash
# # continue an interrupted run exactly where it stopped
# fcn-tutorial train --resume runs/fcn8s
# # score the best weights on the test split at full size: whole-split and per-image Jaccard
# fcn-tutorial evaluate runs/fcn8s/best.pt --split test
# # choose the decision threshold on the validation split, then use it
# fcn-tutorial threshold runs/fcn8s/best.pt --split val
# fcn-tutorial evaluate runs/fcn8s/best.pt --split test --threshold 0.35
# # write a mask PNG and an overlay PNG for every image in a folder
# fcn-tutorial predict runs/fcn8s/best.pt my_frames/ --out predictions/
# ```
#
# `fcn-tutorial train --help` lists every option of `TrainConfig`. `fcn-tutorial evaluate --json` prints
# exactly what a run's `val.json` holds, because both call the same scoring function. A check: score the
# quick FCN-8s on the validation split from the command line and compare with the table above.

# %%
import subprocess
import sys

command = [sys.executable, "-m", "fcn_tutorial", "evaluate", str(RUNS / "fcn8s" / "best.pt"),
           "--split", "val", "--json", "--no-progress"]
done = subprocess.run(command, capture_output=True, text=True, check=True)
from_command_line = json.loads(done.stdout)
print("polyp Jaccard from the command line:", round(from_command_line["jaccard"][1], 6))
print("polyp Jaccard from val.json:        ", round(results["FCN-8s"]["jaccard"][1], 6))

# %% [markdown]
# ## Summary
#
# * The training loop of a segmentation network is a classification loop whose loss is the cross-entropy over
#   every non-void pixel; scoring fills one confusion matrix over the split, at the masks' full size.
# * `TrainConfig.for_recipe("original")` reproduces the 2017 recipe: Adam at $10^{-4}$, batches of ten mirrored
#   $224 \times 224$ crops, early stopping on the validation mean Jaccard. It reached a test polyp Jaccard of 0.43
#   after 3.5 hours on a Titan X.
# * Mixed precision runs the forward pass in 16 bits: bfloat16 needs nothing else, float16 needs a `GradScaler`.
# * Staged training, FCN-32s → FCN-16s → FCN-8s, each stage starting from the last with its new skip at zero,
#   is how the FCN paper trained; each stage improves on the one before.
# * Runs are folders (`config.json`, `history.csv`, `train.log`, `best.pt`, `last.pt`, `val.json`): an
#   interrupted run resumes, and a finished one is reused instead of retrained.
# * Judge a model by its polyp Jaccard against the all-background baseline, and look at its worst frames.
# * The decision threshold (0.5 for the argmax) is a setting: choose it on validation with one sweep over the
#   split (`fcn-tutorial threshold`), then report the test split with it.
#
# ## Exercises
#
# 1. **One training step** (3 points). Write `training_step(model, optimizer, images, masks)` that performs
#    one optimisation step with the pixel-wise cross-entropy (void pixels, 255, ignored) and returns the loss
#    of the batch before the step.

# %% nbgrader={"grade_id": "training_step", "solution": true}
import torch.nn.functional as F


def training_step(model, optimizer, images, masks):
    """One optimisation step on a batch; returns the batch's loss (computed before the step)."""
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), masks, ignore_index=255)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade_id": "training_step_test", "grade": true, "points": 3}
from fcn_tutorial.exercises import check_training_step

check_training_step(training_step)
### BEGIN HIDDEN TESTS
import copy

_generator = torch.Generator().manual_seed(11)
_images = torch.rand(3, 3, 12, 12, generator=_generator)
_masks = (_images[:, 1] > 0.5).long()
_masks[:, :, -2:] = 255
_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
_twin = copy.deepcopy(_model)
_optimizer = torch.optim.SGD(_model.parameters(), lr=0.1, momentum=0.9)
_twin_optimizer = torch.optim.SGD(_twin.parameters(), lr=0.1, momentum=0.9)
for _ in range(3):
    _loss = float(training_step(_model, _optimizer, _images, _masks))
    _twin_optimizer.zero_grad()
    _want = F.cross_entropy(_twin(_images), _masks, ignore_index=255)
    _want.backward()
    _twin_optimizer.step()
    assert abs(_loss - _want.item()) < 1e-5, f"loss {_loss:.5f} instead of {_want.item():.5f}"
assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_model.parameters(), _twin.parameters())), \
    "after three steps with momentum the weights differ from the reference"
### END HIDDEN TESTS

# %% [markdown]
# Open questions: write your answer in the cell below each one.
#
# 2. **A better recipe.** Train FCN-8s again with `pretrained_backbone=True, normalize=True` (ImageNet weights
#    for VGG16 need a download the first time) and compare the validation polyp Jaccard with the run above.

# %% [markdown] nbgrader={"grade_id": "pretrained_backbone", "solution": true, "grade": true, "points": 1}
# *Model answer.* The pretrained backbone reaches a clearly higher validation polyp Jaccard, and reaches it in
# far fewer epochs: its early layers already detect edges and textures, so training only has to adapt them.
# `normalize=True` matters: the ImageNet weights expect inputs normalised with ImageNet's mean and deviation.

# %% [markdown]
# 3. **Augmentation.** The original mirrored every crop (`hflip=1.0`), which adds no variety at all. Train
#    FCN-8s with `loss="ce"` (so that the training and the validation loss are both the cross-entropy) twice:
#    with `hflip=1.0, vflip=0.0` and with `hflip=0.5, vflip=0.5, rotation=15`, and compare the curves: does the
#    gap between training and validation loss shrink?

# %% [markdown] nbgrader={"grade_id": "augmentation", "solution": true, "grade": true, "points": 1}
# *Model answer.* Yes: the training loss falls more slowly (each epoch shows new variants of the frames) and
# the validation loss follows it more closely, so the gap shrinks and the best validation Jaccard comes later
# but is usually higher. With `hflip=1.0` every crop is mirrored, which is the same data seen in a mirror.

# %% [markdown]
# 4. **Mixed precision.** On a GPU, time one epoch with `amp="none"` and with `amp="auto"`. Which format did
#    `precision_plan` pick for your GPU, and how much faster was the epoch?

# %% [markdown] nbgrader={"grade_id": "mixed_precision", "solution": true, "grade": true, "points": 1}
# *Model answer.* On a GPU with bfloat16 support (Ampere or newer: A100, L4, H100) it picks bf16; on older ones
# (T4, V100) fp16 with a gradient scaler. The epoch is typically 1.5 to 3 times faster, more on GPUs with
# tensor cores for the chosen format. Full marks for the format named and both times measured.
