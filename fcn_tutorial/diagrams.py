"""Diagrams for the book, drawn from the models themselves so that they cannot drift from the code.

* :func:`draw_fcn8s`: the FCN-8s architecture (VGG16 stages with their strides, the three score layers,
  the upsamplings, the skips and their crops), labelled with the map sizes that :func:`~fcn_tutorial.models.summary`
  reports for one input size;
* :func:`draw_transposed_convolution`: how a transposed convolution spreads one input pixel over its output,
  and how a bilinear kernel turns that into interpolation.

Both return a matplotlib ``Figure`` that the caller shows and closes::

    fig = draw_fcn8s((288, 384))
    plt.show()
    plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle
from torch import nn

from .models import FCN8s, bilinear_kernel, build_model, crop_offsets, summary

__all__ = ["FeatureMap", "draw_fcn8s", "draw_transposed_convolution", "fcn8s_maps", "one_pixel_response"]

# The maps an FCN-8s computes, in the order of its forward pass: the summary row each one is read from
# and its stride (how many input pixels one cell stands for), which the architecture fixes.
_FCN8S_MAPS = [
    ("input", None, 1),
    ("pool1", "backbone.pool1", 2),
    ("pool2", "backbone.pool2", 4),
    ("pool3", "backbone.pool3", 8),
    ("pool4", "backbone.pool4", 16),
    ("pool5", "backbone.pool5", 32),
    ("fc7", "backbone.fc7", 32),
    ("score_fr", "score_fr", 32),
    ("upscore2", "upscore2", 16),
    ("score_pool4", "score_pool4 crop", 16),  # the cropped map: the one that is added
    ("upscore_pool4", "upscore_pool4", 8),
    ("score_pool3", "score_pool3 crop", 8),
    ("upscore8", "upscore8", 1),
    ("output", "final crop", 1),
]


@dataclass(frozen=True)
class FeatureMap:
    """One map of the network for a given input: ``channels x height x width``, one cell per ``stride``
    input pixels."""

    name: str
    stride: int
    channels: int
    height: int
    width: int

    @property
    def size(self) -> str:
        return f"{self.channels} x {self.height} x {self.width}"


def fcn8s_maps(model: nn.Module, input_size: Sequence[int]) -> dict[str, FeatureMap]:
    """The maps of an FCN-8s for one ``(H, W)`` input, keyed by name (``"pool3"``, ``"score_pool4"``, ...),
    read off :func:`~fcn_tutorial.models.summary` (a meta-device pass: free at any size). The skip maps
    ``score_pool4`` and ``score_pool3`` have their size after the crop, the size that is added."""
    if not isinstance(model, FCN8s):
        raise ValueError(
            f"fcn8s_maps draws an FCN8s; got a {type(model).__name__} (build one with build_model('fcn8s', n_classes))"
        )
    height, width = (int(s) for s in input_size[-2:])
    shapes = {row.name: row.output_shape for row in summary(model, (height, width))}
    maps = {}
    for name, row, stride in _FCN8S_MAPS:
        _, channels, map_height, map_width = (1, 3, height, width) if row is None else shapes[row]
        maps[name] = FeatureMap(name, stride, channels, map_height, map_width)
    return maps


def draw_fcn8s(
    input_size: Sequence[int] = (288, 384),
    *,
    preset: str = "compact",
    model: nn.Module | None = None,
    n_classes: int = 2,
) -> Figure:
    """The FCN-8s architecture for one ``(H, W)`` input: the downsampling path on top (each box a map,
    its height growing with the map's), the score layers in the middle, the upsampling path at the
    bottom, skips and crops as arrows. Every size and offset comes from ``model`` (by default a full-width
    FCN-8s of ``preset`` built on the meta device), via :func:`fcn8s_maps` and
    :func:`~fcn_tutorial.models.crop_offsets`."""
    if model is None:
        with torch.device("meta"):
            model = build_model("fcn8s", n_classes, preset=preset)
    maps = fcn8s_maps(model, input_size)
    offsets = crop_offsets(model, input_size[-2:])
    preset = getattr(model, "preset", preset)

    # (x, y) of each map: the downsampling path on row 2, score layers on row 1, the upsampling path on row 0.
    places = {
        "input": (0.0, 2),
        "pool1": (1.2, 2),
        "pool2": (2.4, 2),
        "pool3": (3.6, 2),
        "pool4": (5.0, 2),
        "pool5": (6.4, 2),
        "fc7": (7.8, 2),
        "score_fr": (7.8, 1),
        "score_pool4": (5.0, 1),
        "score_pool3": (3.6, 1),
        "upscore2": (6.4, 0),
        "upscore_pool4": (4.3, 0),
        "upscore8": (2.0, 0),
        "output": (0.0, 0),
    }
    sums = {"score_pool4": (5.0, 0), "score_pool3": (3.6, 0)}
    colours = {2: "#cfe2f3", 1: "#fce5cd", 0: "#d9ead3"}

    fig, ax = plt.subplots(figsize=(10, 4.6), dpi=100)
    full = maps["input"].height
    box_width = 0.62

    def box_height(feature_map: FeatureMap) -> float:
        return 0.62 * min(feature_map.height / full, 1.0) ** 0.5

    def edge(name: str, side: str) -> tuple[float, float]:
        """A point on the border of a map's box (or of a sum's circle)."""
        if name.startswith("sum:"):
            x, y = sums[name[4:]]
            half_w = half_h = 0.11
        else:
            x, y = places[name]
            half_w, half_h = box_width / 2, box_height(maps[name]) / 2
        return {"left": (x - half_w, y), "right": (x + half_w, y), "top": (x, y + half_h), "bottom": (x, y - half_h)}[
            side
        ]

    def arrow(
        start: tuple[float, float],
        end: tuple[float, float],
        label: str = "",
        *,
        offset=(0.0, 0.1),
        colour: str = "black",
        style: str = "-|>",
    ) -> None:
        ax.add_patch(
            FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10, color=colour, lw=1.1, shrinkA=1, shrinkB=1)
        )
        if label:
            middle = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
            ax.text(
                *middle,
                label,
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
            )

    for name, (x, y) in places.items():
        feature_map, height = maps[name], box_height(maps[name])
        ax.add_patch(
            Rectangle(
                (x - box_width / 2, y - height / 2),
                box_width,
                height,
                facecolor=colours[y],
                edgecolor="#444444",
                lw=0.8,
            )
        )
        label = f"{name}\n{feature_map.size}" + (f"\n1/{feature_map.stride}" if feature_map.stride > 1 else "")
        if y == 1:  # score layers: the label to the left, clear of the arrows
            ax.text(x - box_width / 2 - 0.05, y, label, ha="right", va="center", fontsize=8)
        elif y == 2 or name == "output":
            ax.text(x, y + height / 2 + 0.04, label, ha="center", va="bottom", fontsize=8)
        else:
            ax.text(x, y - height / 2 - 0.04, label, ha="center", va="top", fontsize=8)

    # The downsampling path: VGG16's five stages of 3 x 3 convolutions, each ending in a 2 x 2 max pooling.
    path = ["input", "pool1", "pool2", "pool3", "pool4", "pool5"]
    for number, (start, end) in enumerate(zip(path, path[1:]), start=1):
        convolutions = 2 if number <= 2 else 3
        arrow(edge(start, "right"), edge(end, "left"), f"{convolutions} conv\n+ pool", offset=(0, -0.22))
    arrow(edge("pool5", "right"), edge("fc7", "left"), "fc6 7x7\nfc7 1x1", offset=(0, -0.22))

    # The score layers (1 x 1 convolutions) and the skips with their crops.
    arrow(edge("fc7", "bottom"), edge("score_fr", "top"), "1x1 conv", offset=(-0.38, 0))
    for skip, source in [("score_pool4", "pool4"), ("score_pool3", "pool3")]:
        arrow(edge(source, "bottom"), edge(skip, "top"), "1x1 conv", offset=(0.38, 0), colour="#b45f06")
        top, left = offsets[skip]
        arrow(
            edge(skip, "bottom"),
            edge(f"sum:{skip}", "top"),
            f"crop at {top}, {left}",
            offset=(0.5, 0),
            colour="#b45f06",
        )
        x, y = sums[skip]
        ax.add_patch(Circle((x, y), 0.11, facecolor="white", edgecolor="black", lw=1))
        ax.text(x, y, "+", ha="center", va="center", fontsize=10)

    # The upsampling path: transposed convolutions (x2, x2, x8), the sums, and the final crop.
    arrow(edge("score_fr", "bottom"), edge("upscore2", "right"), "x2", offset=(0.25, 0.1), colour="#38761d")
    arrow(edge("upscore2", "left"), edge("sum:score_pool4", "right"))
    arrow(edge("sum:score_pool4", "left"), edge("upscore_pool4", "right"), "x2", colour="#38761d")
    arrow(edge("upscore_pool4", "left"), edge("sum:score_pool3", "right"))
    arrow(edge("sum:score_pool3", "left"), edge("upscore8", "right"), "x8", colour="#38761d")
    top, left = offsets["final"]
    arrow(edge("upscore8", "left"), edge("output", "right"), f"crop at {top}, {left}", colour="#b45f06")

    height, width = maps["input"].height, maps["input"].width
    ax.set_title(
        f"FCN-8s ({preset} preset) on a {height} x {width} frame: channels x height x width of each map", fontsize=9
    )
    ax.set_xlim(-0.55, 8.35)
    ax.set_ylim(-0.75, 2.75)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def one_pixel_response(
    kernel: torch.Tensor,
    stride: int,
    input_size: tuple[int, int] = (3, 3),
    position: tuple[int, int] = (1, 1),
    padding: int = 0,
) -> torch.Tensor:
    """The output (``H x W``) of a one-channel transposed convolution with ``kernel`` (``k x k``) whose input
    is zero except for a 1 at ``position``: a copy of the kernel at ``stride * position - padding``."""
    pixel = torch.zeros(1, 1, *input_size)
    pixel[0, 0, position[0], position[1]] = 1.0
    return F.conv_transpose2d(pixel, kernel[None, None].float(), stride=stride, padding=padding)[0, 0]


def draw_transposed_convolution(stride: int = 2, *, seed: int = 0) -> Figure:
    """Four panels on a transposed convolution of stride ``stride`` and kernel ``2 * stride``:

    1. one input pixel spreads a copy of the kernel (here an arbitrary one) over the output, placed
       ``stride`` output pixels further for each input pixel;
    2. the same with the bilinear kernel of :func:`~fcn_tutorial.models.bilinear_kernel`: a "tent";
    3. in one dimension, each input value paints a tent; the overlapping tents add up to the straight lines
       between the values, that is linear interpolation;
    4. a small coarse map upsampled by the bilinear kernel: the 2D version of panel 3.
    """
    kernel_size = 2 * stride
    bilinear = bilinear_kernel(1, 1, kernel_size)[0, 0]
    arbitrary = torch.rand(kernel_size, kernel_size, generator=torch.Generator().manual_seed(seed))
    fig, axes = plt.subplots(1, 4, figsize=(10, 3.3), dpi=100)

    for ax, kernel, title in [(axes[0], arbitrary, "any kernel"), (axes[1], bilinear, "bilinear kernel")]:
        response = one_pixel_response(kernel, stride)
        ax.imshow(response.numpy(), cmap="viridis", vmin=0, vmax=1)
        size = response.shape[-1]
        for line in range(size + 1):
            ax.axhline(line - 0.5, color="white", lw=0.3)
            ax.axvline(line - 0.5, color="white", lw=0.3)
        corner = stride * 1 - 0.5  # the copy for input pixel (1, 1) starts at stride * 1
        ax.add_patch(
            Rectangle(
                (corner, corner), kernel_size, kernel_size, fill=False, edgecolor="#e76f51", lw=1.5, linestyle="--"
            )
        )
        ax.set_title(f"input pixel (1, 1) of a 3x3 map,\n{title}: {size}x{size} output", fontsize=9.5)
        ax.set_xticks([])
        ax.set_yticks([])

    # One dimension, stride 4 so that the tents are visible. With padding p, output pixel j lies at input
    # position (j + p - (k - 1) / 2) / s: input value i sits at output position s * i + (k - 1) / 2 - p.
    line_stride, padding = 4, 2
    line_kernel = bilinear_kernel(1, 1, 2 * line_stride)[0, 0]
    tent = line_kernel.sum(dim=0) / line_stride  # the 2D kernel is tent x tent, and a tent of size 2s sums to s
    values = torch.tensor([0.2, 1.0, 0.5, 0.8])
    centres = [line_stride * i + (2 * line_stride - 1) / 2 - padding for i in range(len(values))]
    ax = axes[2]
    for index in range(len(values)):
        one = torch.zeros_like(values)
        one[index] = values[index]
        copy = F.conv_transpose1d(one[None, None], tent[None, None], stride=line_stride, padding=padding)[0, 0]
        ax.plot(range(len(copy)), copy.numpy(), linestyle="--", lw=0.8, color="#999999")
    outputs = F.conv_transpose1d(values[None, None], tent[None, None], stride=line_stride, padding=padding)[0, 0]
    ax.plot(centres, values.numpy(), "-", lw=0.8, color="#e76f51")
    ax.plot(centres, values.numpy(), "s", color="#e76f51", label="input values")
    ax.plot(range(len(outputs)), outputs.numpy(), "o", markersize=3, color="#2a9d8f", label="output = sum of tents")
    ax.set_title(
        f"1D, stride {line_stride} (wider tents): the\ntents (dashed) add up to\nlinear interpolation", fontsize=9.5
    )
    ax.set_xlabel("output pixel", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_ylim(-0.55, 1.1)  # room for the legend below the curves
    ax.set_yticks([0, 0.5, 1])
    ax.legend(fontsize=8, loc="lower center", framealpha=0.9)

    padding = stride // 2
    coarse = torch.tensor([[0.0, 0.2, 0.0], [0.3, 1.0, 0.6], [0.0, 0.4, 0.1]])
    upsampled = F.conv_transpose2d(coarse[None, None], bilinear[None, None], stride=stride, padding=padding)[0, 0]
    axes[3].imshow(upsampled.numpy(), cmap="viridis", vmin=0, vmax=1)
    axes[3].set_title(f"3x3 map -> {upsampled.shape[0]}x{upsampled.shape[1]},\nbilinear, stride {stride}", fontsize=9.5)
    axes[3].set_xticks([])
    axes[3].set_yticks([])
    fig.tight_layout()
    return fig
