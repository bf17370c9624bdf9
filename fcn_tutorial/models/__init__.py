"""Fully Convolutional Networks for segmentation: FCN-32s, FCN-16s and FCN-8s on a VGG16 backbone.

>>> import torch
>>> from fcn_tutorial.models import build_model, summary
>>> model = build_model("fcn8s", n_classes=2, preset="paper", width=0.125)
>>> tuple(model(torch.rand(1, 3, 96, 128)).shape)     # logits: N x n_classes x H x W
(1, 2, 96, 128)

* :mod:`~fcn_tutorial.models.vgg`: the shared VGG16 downsampling path and its ImageNet weights;
* :mod:`~fcn_tutorial.models.fcn`: the three heads, :func:`build_model`, :func:`bilinear_kernel`;
* :mod:`~fcn_tutorial.models.summary`: :func:`summary`, :func:`count_flops`, :func:`crop_offsets`.
* :mod:`~fcn_tutorial.models.staged`: ``init_from_coarser``, the paper's staged training (``--init-from``).
"""

from .fcn import MODELS, FCN8s, FCN16s, FCN32s, bilinear_kernel, build_model
from .summary import LayerSummary, ModelSummary, count_flops, crop_offsets, summary
from .vgg import PRESETS, VGG16Backbone, VGGFeatures, load_vgg16_weights

__all__ = [
    "FCN8s",
    "FCN16s",
    "FCN32s",
    "LayerSummary",
    "MODELS",
    "ModelSummary",
    "PRESETS",
    "VGG16Backbone",
    "VGGFeatures",
    "bilinear_kernel",
    "build_model",
    "count_flops",
    "crop_offsets",
    "load_vgg16_weights",
    "summary",
]
