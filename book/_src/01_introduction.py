# ---
# jupyter:
#   # Chapter 1, "Introduction": the source of book/01_introduction.ipynb.
#   # Sync the notebook with `python book/_src/build.py 01`; see CONTRIBUTING.md.
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["colab-setup"]
# Set-up cell: replaced by scripts/setup_cell.py.

# %% [markdown]
# # Introduction
#
# A colonoscope films the inside of the bowel. Polyps, small growths on its wall, show up in that video
# as pinkish bumps, and finding them early matters because some of them turn into cancer. This book
# teaches a computer to outline polyps in such frames, pixel by pixel, with **Fully Convolutional
# Networks** (FCNs) {cite}`long2015fcn`, the family of networks that made deep semantic segmentation
# practical.
#
# **Who this book is for.** Readers who know some Python and NumPy and have met a convolutional
# network for image classification (a course, a tutorial, or chapters 7 and 8 of [d2l.ai](https://d2l.ai)). No medical
# background is needed, and no earlier segmentation experience.
#
# **What you will be able to do.** By the end you will be able to
#
# * explain why segmentation needs both *what* (the class) and *where* (the pixels), and how an FCN
#   provides both;
# * load, inspect, augment and measure a segmentation data set with image and mask kept in step;
# * build FCN-32s, FCN-16s and FCN-8s from a VGG16 backbone and follow every tensor shape through them;
# * measure a segmenter with pixel accuracy, the Jaccard index (IoU) and the Dice score, and see why
#   accuracy alone misleads;
# * train an FCN on real polyp frames and evaluate and apply it from the command line.

# %% [markdown]
# ## Running this code
#
# Every chapter is a Jupyter notebook that imports the small, tested Python package `fcn_tutorial`;
# the notebooks never copy its code, so what you read is what the tests check. There are four ways
# to read the book.
#
# * **On the web site.** The pages show the outputs of a real run, so you can read everything
#   without running anything.
# * **On Google Colab, with a GPU.** Press the rocket ("launch") button at the top of a page and pick
#   Colab. Then choose *Runtime > Change runtime type > GPU* (a T4 is enough) and run the cells from
#   the top. The first cell installs the package (the book's own version, from PyPI, or from the book's
#   repository when that version is not there); it does nothing when the package is already installed.
# * **On your own machine.** Clone the repository and run `make book`: it creates a virtual
#   environment, executes every chapter and builds the site into `_build/html`. `make test` runs the
#   package's tests and checks the notebooks.
# * **In a class.** `make assignments` writes the student notebooks (the exercise solutions taken out)
#   into `_build/assignments/student/`, and the instructors' versions beside them. Every exercise with
#   an answer to compute comes with a checker cell that says whether your answer is right and, if not,
#   gives a hint; the open questions (this chapter has only those) are answered in words.
#
# The amount of computation is set by a **profile**. `quick` uses small (128-pixel) frames, a narrow
# network and short training, so that the whole book runs in a few minutes on an ordinary laptop CPU; `full`
# trains on the whole data set at full size and wants a GPU. The default is `full` when a CUDA GPU is
# present and `quick` otherwise; set the environment variable `FCN_TUTORIAL_PROFILE=quick` or `full`
# to choose.

# %%
from fcn_tutorial.profiles import current_profile

profile = current_profile()
profile

# %% [markdown]
# Every chapter shows its profile like this near the top, and every training result says which
# profile and which device produced it, so that you can compare numbers fairly.

# %% [markdown]
# ## Where this book comes from
#
# In 2017 a tutorial on FCNs for 2D segmentation {cite}`lisa2017fcn` trained an FCN-8 network on colonoscopy
# frames.
# It was written for Python 2 with Theano and Lasagne, two libraries that are no longer maintained,
# so it no longer runs. Its ideas have aged well, though: it moved from classification to
# segmentation, built FCN-32, FCN-16 and FCN-8 on top of VGG16 {cite}`simonyan2015vgg`, scored the
# result with accuracy and the Jaccard index, and reported a mean Jaccard of about 0.68 on its test
# split after some hours on a GPU, while noting that a second run landed far lower.
#
# This book keeps that path and brings the tools up to date:
#
# | then (2017) | here |
# |---|---|
# | Theano + Lasagne, Python 2 | PyTorch and torchvision, Python 3 |
# | scripts with global state | a small package with tests and a command line, `fcn-tutorial` |
# | CVC-912 polyps, by request | the public Kvasir-SEG set, CVC-912 when you have it, or your own folder |
# | random crop and a horizontal flip | joint image and mask augmentation with `torchvision.transforms.v2` |
# | one GPU, hours of training | a `quick` profile for any CPU and a `full` one for a GPU |
#
# The CVC-912 frames were published with the EndoScene benchmark {cite}`vazquez2016benchmark`; Kvasir-SEG
# is the work of Jha and colleagues {cite}`jha2020kvasir`. [Chapter 3](03_data.ipynb) presents both.
#
# The package can also rebuild the 2017 network exactly (its padding, its ReLU after the score layers,
# its learned upsampling) as the `original` preset, next to the `paper` preset that follows the
# FCN paper of Long, Shelhamer and Darrell {cite}`long2015fcn`.

# %% [markdown]
# ## A map of the book
#
# 1. **Introduction** (this chapter): the goal, the tools and a first polyp.
# 2. [From classification to segmentation](02_classification_to_segmentation.ipynb): what changes when
#    every pixel needs a label; the downsampling path, the upsampling path and skip connections.
# 3. [The data](03_data.ipynb): the polyp data sets, loading, augmentation, and how rare polyp pixels are.
# 4. [FCN architectures](04_fcn_architectures.ipynb): FCN-32s, FCN-16s and FCN-8s layer by layer.
# 5. [Measuring segmentation](05_measuring_segmentation.ipynb): accuracy, the Jaccard index and Dice.
# 6. [Training](06_training.ipynb): training an FCN-8s, watching it learn and using it on new frames.
#
# Each chapter ends with a summary and exercises.

# %% [markdown]
# ## A first look at a polyp
#
# The package finds the polyp frames for us. `load_polyp_data` returns the real Kvasir-SEG frames when
# they are on disk (or can be downloaded) and falls back to a synthetic set otherwise, saying which one
# it used.

# %%
import torch
from IPython.display import Markdown, display

from fcn_tutorial.data import VOID, load_polyp_data

data = load_polyp_data()
if data.synthetic:
    display(Markdown(f"**Note:** the real polyp frames were not found, so this chapter uses the "
                     f"synthetic set instead ({data.reason})."))
print("data set:", data.name)
print("frames in the training, validation and test splits:",
      len(data.train), len(data.val), len(data.test))

# %% [markdown]
# A data set item is a pair: the image, a `float32` tensor of shape `3 x H x W` with values in
# $[0, 1]$, and the mask, an `int64` tensor of shape `H x W` that holds one class index per pixel.

# %%
image, mask = data.train[0]
print("image:", tuple(image.shape), image.dtype)
print("mask: ", tuple(mask.shape), mask.dtype)

# %% [markdown]
# Frames differ in size (this one's size depends on your copy of the data), but every pair keeps
# these promises:

# %%
# NBVAL_CHECK_OUTPUT
print("image: 3 channels of float32:", image.shape[0] == 3 and image.dtype == torch.float32,
      f"| values in [{image.min():.0f}, {image.max():.0f}]")
print("mask: int64 with the image's height and width:",
      mask.dtype == torch.int64 and mask.shape == image.shape[1:])

# %% [markdown]
# There are only two classes: background and polyp. A third value, `VOID`, marks pixels that no
# one should be graded on (in some data sets, the dark border around the endoscope's round view).

# %%
# NBVAL_CHECK_OUTPUT
print("classes:", list(data.train.class_names))
print("number of classes:", data.train.n_classes)
print("void label:", VOID)
print("values in this mask:", mask.unique().tolist())

# %% [markdown]
# How does a mask file become these class indices? Kvasir-SEG stores its masks as JPEG files, and
# JPEG compression blurs the black-and-white outline into a few grey values. The data set therefore
# reads each file through a table, `lookup`, that gives the class of every grey value: below 128 is
# background, 128 and above is polyp.

# %%
# NBVAL_CHECK_OUTPUT
for grey in [0, 12, 127, 128, 240, 255]:
    print(f"grey value {grey:3d} in the mask file -> class {data.train.lookup[grey].item()}")

# %% [markdown]
# Let us look at the frame and its mask side by side, and at the mask drawn over the frame.

# %% mystnb={"image": {"alt": "A Kvasir-SEG colonoscopy frame, its polyp mask in white on black, and the mask drawn over the frame"}}
# %matplotlib inline
import matplotlib.pyplot as plt

from fcn_tutorial.plotting import show_pair

fig = show_pair(image, mask, title=f"{data.name}: training frame {data.train.names[0]}")
plt.show()
plt.close(fig)

# %% [markdown]
# The polyp is the bulging region that the mask marks as class 1. Every such outline was drawn by
# hand and checked by a specialist, which is why a data set like this holds about a thousand frames,
# not millions: data, rather than computing power, limits what we can learn.

# %%
polyp_share = (mask == 1).float().mean().item()
print(f"polyp pixels in this frame: {polyp_share:.1%}")

# %% [markdown]
# Even in a frame chosen because it shows a polyp, most pixels are background. Keep this in mind: a
# network that answered "background" everywhere would already be right most of the time, which is why
# [the chapter on measuring segmentation](05_measuring_segmentation.ipynb) uses better scores than
# pixel accuracy.

# %% [markdown]
# ## Summary
#
# * Semantic segmentation gives every pixel a class; here, background or polyp.
# * The book follows a 2017 FCN tutorial with today's tools: PyTorch, a tested package and a public
#   data set.
# * A profile (`quick` or `full`) sizes every computation to the machine; every result names it.
# * Images are `3 x H x W` floats in $[0, 1]$, masks `H x W` integers with `VOID` pixels ignored.
#
# ## Exercises
#
# Open questions: write your answer in the cell below each one.
#
# 1. Run this chapter on Colab with a GPU and check that the profile switches to `full`. What changes
#    in the printed profile?

# %% [markdown] nbgrader={"grade_id": "colab_profile", "solution": true, "grade": true, "points": 1}
# *Model answer.* The line reads `profile full on cuda` instead of `profile quick on cpu`: no longer a
# narrow network on a few hundred small frames, but the full-width network on every training frame at full
# size, larger crops and batches, and many more epochs (`FCN_TUTORIAL_PROFILE` overrides the choice).

# %% [markdown]
# 2. Show three more training frames with `show_pair`. How much does the share of polyp pixels vary
#    between them?

# %% [markdown] nbgrader={"grade_id": "polyp_share", "solution": true, "grade": true, "points": 1}
# *Model answer.* A lot: from a few percent of the frame for a small, distant polyp to a third or more
# for a close-up. About one pixel in seven is polyp on average, so a frame's share says little about the
# next one; that is why the book scores each class separately (chapter 5).

# %% [markdown]
# 3. Look up Kvasir-SEG's licence in the paper that introduced it. What may you do with the frames,
#    and what needs the authors' permission?

# %% [markdown] nbgrader={"grade_id": "kvasir_licence", "solution": true, "grade": true, "points": 1}
# *Model answer.* Jha et al. (MMM 2020) allow research and educational use, with a citation of the
# paper. Any other use, commercial use in particular, needs the authors' prior written permission.
