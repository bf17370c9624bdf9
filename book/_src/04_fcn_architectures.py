# Chapter 4, "FCN-32s, FCN-16s and FCN-8s": the percent-format source of book/04_fcn_architectures.ipynb.
# Build with `python book/_src/04_06_build.py 04`, then execute the notebook in place.

# %% tags=["colab-setup"]
# Set-up cell: written by scripts/setup_cell.py

# %% [markdown]
# # FCN-32s, FCN-16s and FCN-8s
#
# [The previous chapters](02_classification_to_segmentation.ipynb) turned a classifier into a network that
# outputs a map of class scores. This chapter builds the three Fully Convolutional Networks of Long, Shelhamer
# and Darrell (2015) piece by piece, follows the shape of the data through each of them, and explains the two
# details that puzzle most readers: the padding of 100 pixels in the first layer, and the learned upsampling.
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
import torch
import torch.nn.functional as F

from fcn_tutorial.models import bilinear_kernel, build_model, count_flops, crop_offsets, summary

plt.rcParams["figure.dpi"] = 100
torch.manual_seed(0)
