"""The VGG16 downsampling path shared by FCN-32s, FCN-16s and FCN-8s, and its ImageNet weights.

VGG16 has five stages of 3 x 3 convolutions, each closed by a 2 x 2 max pooling that halves the
height and width, then two fully connected layers. An FCN keeps all of it but reads the fully connected
layers as convolutions: ``fc6`` is a 7 x 7 convolution over the 512 x 7 x 7 pool5 map, ``fc7`` a 1 x 1
convolution. The network then slides over an image of any size and returns a *map* of features.

The layers carry the names of the FCN paper (``conv1_1`` ... ``conv5_3``, ``pool1`` ... ``pool5``,
``fc6``, ``fc7``). Three presets change only the padding and the pooling:

* ``"paper"``: the Caffe FCN. ``conv1_1`` pads 100 pixels, pooling rounds up (``ceil_mode``),
  ``fc6`` is unpadded. The padding lets a 7 x 7 ``fc6`` fit even on a small image; the heads crop
  the extra border away again with fixed offsets.
* ``"original"``: the 2017 Theano/Lasagne tutorial: the same, but pooling rounds down.
* ``"compact"``: no padding trick. Every 3 x 3 convolution pads 1, ``fc6`` pads 3, pooling rounds up,
  so pool *k* is exactly ``ceil(size / 2**k)`` and nothing needs cropping but the last few pixels.

``width`` scales every channel count (``fc6`` and ``fc7`` included), e.g. ``width=0.25`` for a
network that trains on a laptop CPU. ``batch_norm=True`` puts a batch normalisation between each 3 x 3
convolution and its ReLU, as torchvision's ``vgg16_bn`` does: not in the paper, but a network trained
from scratch (no ImageNet weights, as on a CPU without internet) learns much faster with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["PRESETS", "VGG16Backbone", "VGGFeatures", "load_vgg16_weights", "scaled_channels"]

PRESETS = ("paper", "original", "compact")

# Our layer name -> the name of the same layer in torchvision's ``vgg16().state_dict()``.
TORCHVISION_VGG16_NAMES = {
    "conv1_1": "features.0",
    "conv1_2": "features.2",
    "conv2_1": "features.5",
    "conv2_2": "features.7",
    "conv3_1": "features.10",
    "conv3_2": "features.12",
    "conv3_3": "features.14",
    "conv4_1": "features.17",
    "conv4_2": "features.19",
    "conv4_3": "features.21",
    "conv5_1": "features.24",
    "conv5_2": "features.26",
    "conv5_3": "features.28",
    "fc6": "classifier.0",
    "fc7": "classifier.3",
}
# The same for ``vgg16_bn()``: each convolution is followed by its batch norm (``features.<i+1>``).
TORCHVISION_VGG16_BN_NAMES = {
    "conv1_1": "features.0",
    "conv1_2": "features.3",
    "conv2_1": "features.7",
    "conv2_2": "features.10",
    "conv3_1": "features.14",
    "conv3_2": "features.17",
    "conv3_3": "features.20",
    "conv4_1": "features.24",
    "conv4_2": "features.27",
    "conv4_3": "features.30",
    "conv5_1": "features.34",
    "conv5_2": "features.37",
    "conv5_3": "features.40",
    "fc6": "classifier.0",
    "fc7": "classifier.3",
}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    return preset


def scaled_channels(channels: int, width: float) -> int:
    """``channels`` scaled by ``width`` and rounded, at least 1: ``scaled_channels(4096, 0.25) == 1024``."""
    if not width > 0:
        raise ValueError(f"width must be a positive number (1.0 is the paper's VGG16), got {width!r}")
    return max(1, round(channels * width))


class VGGFeatures(NamedTuple):
    """The three maps the FCN heads read: pool3 (1/8 of the input), pool4 (1/16) and fc7 (1/32)."""

    pool3: torch.Tensor
    pool4: torch.Tensor
    fc7: torch.Tensor


class VGG16Backbone(nn.Module):
    """VGG16 as a fully convolutional network, from ``conv1_1`` to ``fc7``; returns :class:`VGGFeatures`.

    >>> backbone = VGG16Backbone("compact", width=0.125)
    >>> [tuple(f.shape) for f in backbone(torch.zeros(1, 3, 64, 96))]
    [(1, 32, 8, 12), (1, 64, 4, 6), (1, 512, 2, 3)]
    """

    def __init__(self, preset: str = "paper", width: float = 1.0, batch_norm: bool = False):
        super().__init__()
        self.preset = check_preset(preset)
        self.width = width
        self.batch_norm = batch_norm
        c64, c128, c256, c512, c4096 = (scaled_channels(c, width) for c in (64, 128, 256, 512, 4096))
        self.out_channels = {"pool3": c256, "pool4": c512, "fc7": c4096}
        # The smallest input whose pool5 map still fits fc6's 7 x 7 kernel (only floor pooling runs out).
        self.min_size = 26 if preset == "original" else 1

        first_padding = 1 if preset == "compact" else 100  # the paper's trick: see the module docstring
        ceil_mode = preset != "original"  # Caffe rounds pooled sizes up; Lasagne rounded them down

        def conv3x3(in_channels: int, out_channels: int, padding: int = 1) -> nn.Conv2d:
            return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=padding)

        def pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode)

        def norm(channels: int) -> nn.Module:  # identity (no parameters) unless batch_norm
            return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()

        self.conv1_1, self.norm1_1 = conv3x3(3, c64, padding=first_padding), norm(c64)
        self.relu1_1 = nn.ReLU(inplace=True)
        self.conv1_2, self.norm1_2 = conv3x3(c64, c64), norm(c64)
        self.relu1_2 = nn.ReLU(inplace=True)
        self.pool1 = pool()  # 1/2

        self.conv2_1, self.norm2_1 = conv3x3(c64, c128), norm(c128)
        self.relu2_1 = nn.ReLU(inplace=True)
        self.conv2_2, self.norm2_2 = conv3x3(c128, c128), norm(c128)
        self.relu2_2 = nn.ReLU(inplace=True)
        self.pool2 = pool()  # 1/4

        self.conv3_1, self.norm3_1 = conv3x3(c128, c256), norm(c256)
        self.relu3_1 = nn.ReLU(inplace=True)
        self.conv3_2, self.norm3_2 = conv3x3(c256, c256), norm(c256)
        self.relu3_2 = nn.ReLU(inplace=True)
        self.conv3_3, self.norm3_3 = conv3x3(c256, c256), norm(c256)
        self.relu3_3 = nn.ReLU(inplace=True)
        self.pool3 = pool()  # 1/8

        self.conv4_1, self.norm4_1 = conv3x3(c256, c512), norm(c512)
        self.relu4_1 = nn.ReLU(inplace=True)
        self.conv4_2, self.norm4_2 = conv3x3(c512, c512), norm(c512)
        self.relu4_2 = nn.ReLU(inplace=True)
        self.conv4_3, self.norm4_3 = conv3x3(c512, c512), norm(c512)
        self.relu4_3 = nn.ReLU(inplace=True)
        self.pool4 = pool()  # 1/16

        self.conv5_1, self.norm5_1 = conv3x3(c512, c512), norm(c512)
        self.relu5_1 = nn.ReLU(inplace=True)
        self.conv5_2, self.norm5_2 = conv3x3(c512, c512), norm(c512)
        self.relu5_2 = nn.ReLU(inplace=True)
        self.conv5_3, self.norm5_3 = conv3x3(c512, c512), norm(c512)
        self.relu5_3 = nn.ReLU(inplace=True)
        self.pool5 = pool()  # 1/32

        # The classifier's fully connected layers, read as convolutions.
        self.fc6 = nn.Conv2d(c512, c4096, kernel_size=7, padding=3 if preset == "compact" else 0)
        self.relu6, self.drop6 = nn.ReLU(inplace=True), nn.Dropout(0.5)
        self.fc7 = nn.Conv2d(c4096, c4096, kernel_size=1)
        self.relu7, self.drop7 = nn.ReLU(inplace=True), nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> VGGFeatures:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a batch of RGB images N x 3 x H x W, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"a {x.shape[-2]} x {x.shape[-1]} input is too small for the {self.preset!r} preset: "
                f"height and width must be at least {self.min_size}"
            )
        h = self.relu1_1(self.norm1_1(self.conv1_1(x)))
        h = self.relu1_2(self.norm1_2(self.conv1_2(h)))
        h = self.pool1(h)

        h = self.relu2_1(self.norm2_1(self.conv2_1(h)))
        h = self.relu2_2(self.norm2_2(self.conv2_2(h)))
        h = self.pool2(h)

        h = self.relu3_1(self.norm3_1(self.conv3_1(h)))
        h = self.relu3_2(self.norm3_2(self.conv3_2(h)))
        h = self.relu3_3(self.norm3_3(self.conv3_3(h)))
        pool3 = h = self.pool3(h)

        h = self.relu4_1(self.norm4_1(self.conv4_1(h)))
        h = self.relu4_2(self.norm4_2(self.conv4_2(h)))
        h = self.relu4_3(self.norm4_3(self.conv4_3(h)))
        pool4 = h = self.pool4(h)

        h = self.relu5_1(self.norm5_1(self.conv5_1(h)))
        h = self.relu5_2(self.norm5_2(self.conv5_2(h)))
        h = self.relu5_3(self.norm5_3(self.conv5_3(h)))
        h = self.pool5(h)

        h = self.drop6(self.relu6(self.fc6(h)))
        fc7 = self.drop7(self.relu7(self.fc7(h)))
        return VGGFeatures(pool3, pool4, fc7)


def load_vgg16_weights(backbone: VGG16Backbone, source: str | os.PathLike = "imagenet") -> None:
    """Copy torchvision's VGG16 weights into ``backbone`` (convolutions as they are, the first two
    classifier layers reshaped into ``fc6`` and ``fc7``).

    ``source`` is ``"imagenet"`` (torchvision's ``VGG16_Weights.IMAGENET1K_V1``, downloaded once into
    torch's cache) or the path of a local file holding a ``torchvision.models.vgg16().state_dict()``.
    A backbone with ``batch_norm=True`` takes ``vgg16_bn`` weights instead (``VGG16_BN_Weights``), batch
    norms included. The ImageNet weights expect ImageNet-normalised images (a transform, off by default).
    """
    if backbone.width != 1.0:
        raise ValueError(
            f"VGG16 weights fit only width=1.0, but this backbone has width={backbone.width}; "
            "use pretrained_backbone=False for a narrower network"
        )
    if isinstance(source, str) and source == "imagenet":
        from torchvision.models import VGG16_BN_Weights, VGG16_Weights

        weights = VGG16_BN_Weights.IMAGENET1K_V1 if backbone.batch_norm else VGG16_Weights.IMAGENET1K_V1
        origin = f"torchvision {type(weights).__name__}.IMAGENET1K_V1"
        state = weights.get_state_dict(progress=True)
    else:
        path = Path(source)
        origin = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG16 weights file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # a truncated download, a pickle with code, another format
            raise ValueError(f"VGG16 weights file {path} could not be read as a state dict: {error}") from error
        if not isinstance(state, dict):
            raise ValueError(f"VGG16 weights file {path} holds a {type(state).__name__}, not a state dict")

    names = TORCHVISION_VGG16_BN_NAMES if backbone.batch_norm else TORCHVISION_VGG16_NAMES
    missing = [
        f"{theirs}.{kind}"
        for theirs in names.values()
        for kind in ("weight", "bias")
        if f"{theirs}.{kind}" not in state
    ]
    if missing:
        raise ValueError(
            f"{origin} is not a torchvision {'vgg16_bn' if backbone.batch_norm else 'VGG16'} state dict: "
            f"it lacks {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}"
        )
    with torch.no_grad():
        for ours, theirs in names.items():
            layer = getattr(backbone, ours)
            weight, bias = state[f"{theirs}.weight"], state[f"{theirs}.bias"]
            if weight.numel() != layer.weight.numel() or bias.shape != layer.bias.shape:
                raise ValueError(
                    f"{origin}: {theirs}.weight has shape {tuple(weight.shape)}, which does not fit "
                    f"{ours} ({tuple(layer.weight.shape)}); is it a VGG16 (not VGG11/13/19)?"
                )
            # fc6: 4096 x 25088 -> 4096 x 512 x 7 x 7 (torchvision flattens pool5 channel-first, as here).
            layer.weight.copy_(weight.reshape(layer.weight.shape))
            layer.bias.copy_(bias)
            norm = getattr(backbone, ours.replace("conv", "norm"), None)
            if isinstance(norm, nn.BatchNorm2d):  # vgg16_bn: the batch norm right after this convolution
                index = int(theirs.split(".")[1]) + 1
                norm.load_state_dict({key: state[f"features.{index}.{key}"] for key in norm.state_dict()})
