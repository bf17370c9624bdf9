"""FCN-32s, FCN-16s and FCN-8s: one shared VGG16 downsampling path, three short upsampling heads.

Every head follows the figure of Long, Shelhamer and Darrell (2015):

* a 1 x 1 convolution turns a feature map into one score map per class (``score_fr``, ``score_pool4``,
  ``score_pool3``);
* a transposed convolution upsamples scores (``upscore2`` doubles them; ``upscore32``, ``upscore16``
  and ``upscore8`` return to the input's resolution);
* a *skip* adds the scores of a finer pooling stage to the upsampled coarse scores, after cropping both
  to the same size (the crop offsets are written in each ``forward``);
* a last crop cuts the output to the input's height and width.

Presets (see :mod:`fcn_tutorial.models.vgg` for the backbone's side):

* ``"paper"``: the Caffe FCN. Linear score layers, bias-free transposed convolutions initialised to
  bilinear interpolation, and the fixed Caffe crop offsets (FCN-8s 5, 9, 31; FCN-16s 5, 27; FCN-32s 19)
  that undo ``conv1_1``'s padding of 100.
* ``"original"``: the 2017 tutorial. A ReLU after each score layer, transposed convolutions with bias and
  Glorot-uniform weights, and centre crops computed from the actual sizes, ``(size - smaller) // 2``.
* ``"compact"``: no padding of 100; the transposed convolutions pad ``factor // 2`` so that their maps
  line up with the skips at the top-left corner, and the crops only trim the last few pixels.

All models return logits ``N x n_classes x H x W`` for an ``N x 3 x H x W`` input.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from .vgg import VGG16Backbone, check_preset, load_vgg16_weights

__all__ = ["FCN8s", "FCN16s", "FCN32s", "MODELS", "bilinear_kernel", "build_model"]

# Called as on_crop(name, (top, left), output_shape) by every recorded crop; see summary.crop_offsets.
CropObserver = Callable[[str, tuple[int, int], tuple[int, ...]], None]


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """The weight (``in_channels x out_channels x k x k``) that makes ``nn.ConvTranspose2d`` upsample
    each channel by bilinear interpolation: channel ``c`` to channel ``c`` only, a "tent" kernel.

    With ``factor = (k + 1) // 2`` the tent peaks at ``centre = factor - 1`` (odd ``k``) or
    ``factor - 0.5`` (even ``k``, between two pixels) and falls linearly to 0 at ``factor`` pixels away.

    >>> bilinear_kernel(1, 1, 4)[0, 0]
    tensor([[0.0625, 0.1875, 0.1875, 0.0625],
            [0.1875, 0.5625, 0.5625, 0.1875],
            [0.1875, 0.5625, 0.5625, 0.1875],
            [0.0625, 0.1875, 0.1875, 0.0625]])
    """
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    steps = torch.arange(kernel_size, dtype=torch.float32)
    tent = 1 - (steps - centre).abs() / factor
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    for channel in range(min(in_channels, out_channels)):
        weight[channel, channel] = tent[:, None] * tent[None, :]
    return weight


class _FCN(nn.Module):
    """What the three variants share: the backbone, the layer factories, the crops and the weight init."""

    def __init__(self, n_classes: int, *, preset: str = "paper", width: float = 1.0, batch_norm: bool = False):
        super().__init__()
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        self.n_classes, self.preset, self.width = n_classes, check_preset(preset), width
        self.backbone = VGG16Backbone(preset, width, batch_norm=batch_norm)
        # The 2017 tutorial put a ReLU after each score layer; the paper's score layers are linear.
        self.score_activation = nn.ReLU() if preset == "original" else nn.Identity()
        self.on_crop: CropObserver | None = None  # set for a moment by summary() and crop_offsets()

    def _score(self, feature_map: str) -> nn.Conv2d:
        """A 1 x 1 convolution from a backbone map (``"fc7"``, ``"pool4"``, ``"pool3"``) to class scores."""
        return nn.Conv2d(self.backbone.out_channels[feature_map], self.n_classes, kernel_size=1)

    def _upsample(self, factor: int) -> nn.ConvTranspose2d:
        """A transposed convolution that upsamples scores ``factor`` times (kernel ``2 * factor``)."""
        padding = factor // 2 if self.preset == "compact" else 0
        return nn.ConvTranspose2d(
            self.n_classes,
            self.n_classes,
            kernel_size=2 * factor,
            stride=factor,
            padding=padding,
            bias=self.preset == "original",
        )

    @torch.no_grad()
    def _init_weights(self, pretrained_backbone: bool | str | os.PathLike) -> None:
        """``paper``/``compact``: VGG convolutions as torchvision initialises VGG16 (Kaiming normal), score
        layers zero (as in the paper), upsampling bilinear. ``original``: Glorot-uniform weights and zero
        biases everywhere (Lasagne's defaults). With ``pretrained_backbone``, VGG16's weights replace the
        backbone's random ones."""
        pretrained = pretrained_backbone is not False and pretrained_backbone is not None
        if pretrained:
            load_vgg16_weights(self.backbone, "imagenet" if pretrained_backbone is True else pretrained_backbone)
        for name, module in self.named_modules():
            if pretrained and name.startswith("backbone."):
                continue
            if self.preset == "original" and isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.ConvTranspose2d):
                in_channels, out_channels, kernel_size, _ = module.weight.shape
                module.weight.copy_(bilinear_kernel(in_channels, out_channels, kernel_size))
            elif isinstance(module, nn.Conv2d):
                if name.startswith("score"):
                    nn.init.zeros_(module.weight)
                else:
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def _crop(self, name: str | None, x: torch.Tensor, height: int, width: int, caffe_offset: int) -> torch.Tensor:
        """Cut a ``height x width`` window out of ``x``: at the Caffe offset (``paper``), centred
        (``original``), or at the top-left corner (``compact``)."""
        if self.preset == "paper":
            top = left = caffe_offset
        elif self.preset == "original":
            top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
        else:
            top = left = 0
        if top + height > x.shape[-2] or left + width > x.shape[-1]:
            raise ValueError(
                f"{type(self).__name__} ({self.preset}): cannot crop {height} x {width} at "
                f"({top}, {left}) from a {x.shape[-2]} x {x.shape[-1]} map; the input is too small"
            )
        cropped = x[:, :, top : top + height, left : left + width]
        if name is not None and self.on_crop is not None:
            self.on_crop(name, (top, left), tuple(cropped.shape))
        return cropped

    def _align(
        self, name: str, skip: torch.Tensor, upscored: torch.Tensor, caffe_offset: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop skip scores and upsampled scores to their common size, so that they can be summed. With
        the padding of 100 only the skip map is larger; in ``compact`` only the upsampled one."""
        height, width = min(skip.shape[-2], upscored.shape[-2]), min(skip.shape[-1], upscored.shape[-1])
        skip = self._crop(name, skip, height, width, caffe_offset)
        upscored = self._crop(None, upscored, height, width, caffe_offset=0)
        return skip, upscored

    def _crop_to_input(self, upscored: torch.Tensor, x: torch.Tensor, caffe_offset: int) -> torch.Tensor:
        return self._crop("final", upscored, x.shape[-2], x.shape[-1], caffe_offset)

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, preset={self.preset!r}, width={self.width}"


class FCN32s(_FCN):
    """FCN-32s: the fc7 scores upsampled 32 times in one step. The coarsest of the three."""

    def __init__(
        self,
        n_classes: int,
        *,
        preset: str = "paper",
        width: float = 1.0,
        pretrained_backbone: bool | str | os.PathLike = False,
        batch_norm: bool = False,
    ):
        super().__init__(n_classes, preset=preset, width=width, batch_norm=batch_norm)
        self.score_fr = self._score("fc7")
        self.upscore32 = self._upsample(32)
        self._init_weights(pretrained_backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, fc7 = self.backbone(x)
        score_fr = self.score_activation(self.score_fr(fc7))  # 1/32 of the input
        upscore32 = self.upscore32(score_fr)  # 1/1
        return self._crop_to_input(upscore32, x, caffe_offset=19)


class FCN16s(_FCN):
    """FCN-16s: fc7 scores upsampled 2x, plus pool4 scores, then upsampled 16x."""

    def __init__(
        self,
        n_classes: int,
        *,
        preset: str = "paper",
        width: float = 1.0,
        pretrained_backbone: bool | str | os.PathLike = False,
        batch_norm: bool = False,
    ):
        super().__init__(n_classes, preset=preset, width=width, batch_norm=batch_norm)
        self.score_fr = self._score("fc7")
        self.upscore2 = self._upsample(2)
        self.score_pool4 = self._score("pool4")
        self.upscore16 = self._upsample(16)
        self._init_weights(pretrained_backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, pool4, fc7 = self.backbone(x)
        score_fr = self.score_activation(self.score_fr(fc7))  # 1/32
        upscore2 = self.upscore2(score_fr)  # 1/16

        score_pool4 = self.score_activation(self.score_pool4(pool4))  # 1/16
        score_pool4, upscore2 = self._align("score_pool4", score_pool4, upscore2, caffe_offset=5)
        upscore16 = self.upscore16(upscore2 + score_pool4)  # 1/1
        return self._crop_to_input(upscore16, x, caffe_offset=27)


class FCN8s(_FCN):
    """FCN-8s: like FCN-16s, then upsampled 2x again, plus pool3 scores, then upsampled 8x. The finest."""

    def __init__(
        self,
        n_classes: int,
        *,
        preset: str = "paper",
        width: float = 1.0,
        pretrained_backbone: bool | str | os.PathLike = False,
        batch_norm: bool = False,
    ):
        super().__init__(n_classes, preset=preset, width=width, batch_norm=batch_norm)
        self.score_fr = self._score("fc7")
        self.upscore2 = self._upsample(2)
        self.score_pool4 = self._score("pool4")
        self.upscore_pool4 = self._upsample(2)
        self.score_pool3 = self._score("pool3")
        self.upscore8 = self._upsample(8)
        self._init_weights(pretrained_backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool3, pool4, fc7 = self.backbone(x)
        score_fr = self.score_activation(self.score_fr(fc7))  # 1/32
        upscore2 = self.upscore2(score_fr)  # 1/16

        score_pool4 = self.score_activation(self.score_pool4(pool4))  # 1/16
        score_pool4, upscore2 = self._align("score_pool4", score_pool4, upscore2, caffe_offset=5)
        upscore_pool4 = self.upscore_pool4(upscore2 + score_pool4)  # 1/8

        score_pool3 = self.score_activation(self.score_pool3(pool3))  # 1/8
        score_pool3, upscore_pool4 = self._align("score_pool3", score_pool3, upscore_pool4, caffe_offset=9)
        upscore8 = self.upscore8(upscore_pool4 + score_pool3)  # 1/1
        return self._crop_to_input(upscore8, x, caffe_offset=31)


MODELS: dict[str, type[_FCN]] = {"fcn32s": FCN32s, "fcn16s": FCN16s, "fcn8s": FCN8s}


def build_model(
    name: str,
    n_classes: int,
    *,
    preset: str = "paper",
    width: float = 1.0,
    pretrained_backbone: bool | str | os.PathLike = False,
    batch_norm: bool = False,
) -> nn.Module:
    """Build ``"fcn32s"``, ``"fcn16s"`` or ``"fcn8s"`` for ``n_classes`` classes.

    ``preset`` is ``"paper"``, ``"original"`` or ``"compact"`` (see the module docstring); ``width`` scales
    every channel count; ``pretrained_backbone`` is ``False``, ``True`` (torchvision's ImageNet VGG16,
    downloaded once) or the path of a local ``torchvision.models.vgg16()`` state-dict file;
    ``batch_norm=True`` adds a batch norm after each 3 x 3 convolution (torchvision's ``vgg16_bn``).

    >>> model = build_model("fcn8s", 2, preset="compact", width=0.125)
    >>> tuple(model(torch.zeros(1, 3, 33, 47)).shape)
    (1, 2, 33, 47)
    """
    key = name.lower().replace("-", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[key](
        n_classes, preset=preset, width=width, pretrained_backbone=pretrained_backbone, batch_norm=batch_norm
    )
