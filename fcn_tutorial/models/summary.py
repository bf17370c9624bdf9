"""Look inside a model for a given input size: layer output shapes, parameters, FLOPs, crop offsets.

All three functions push one input through the model on PyTorch's **meta device**: meta tensors carry
a shape and a dtype but no data, so the pass does no arithmetic and allocates no memory. A full-width
FCN-8s on a 1200 x 1200 input is inspected in milliseconds. The model's own weights are swapped for
meta copies for that one call (``torch.func.functional_call``); the model itself is left untouched.

>>> from fcn_tutorial.models import build_model
>>> model = build_model("fcn8s", 2, preset="original", width=0.125)
>>> crop_offsets(model, (224, 224))
{'score_pool4': (5, 5), 'score_pool3': (9, 9), 'final': (28, 28)}
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["LayerSummary", "ModelSummary", "count_flops", "crop_offsets", "summary"]

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED_CONVOLUTIONS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass(frozen=True)
class LayerSummary:
    """One call of one layer: its name in the model, its type, the shape it returned, its parameters
    (counted at its first call only) and its floating-point operations."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


@dataclass(frozen=True)
class ModelSummary:
    """The layers of a model in the order they ran; iterate over it for :class:`LayerSummary` rows,
    print it for a table."""

    input_shape: tuple[int, ...]
    rows: list[LayerSummary]

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def total_flops(self) -> int:
        return sum(row.flops for row in self.rows)

    def __iter__(self) -> Iterator[LayerSummary]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> LayerSummary:
        return self.rows[index]

    def _table(self) -> tuple[list[str], list[list[str]], list[str]]:
        header = ["layer", "type", "output shape", "params", "MFLOPs"]
        body = [
            [
                row.name,
                row.type,
                " x ".join(map(str, row.output_shape)),
                f"{row.params:,}",
                f"{row.flops / 1e6:,.1f}" if row.flops else "",
            ]
            for row in self.rows
        ]
        footer = [
            "total",
            "",
            "input " + " x ".join(map(str, self.input_shape)),
            f"{self.total_params:,}",
            f"{self.total_flops / 1e6:,.1f}",
        ]
        return header, body, footer

    def __str__(self) -> str:
        header, body, footer = self._table()
        lines = [header, *body, footer]
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]

        def format_line(line: list[str]) -> str:
            cells = [
                cell.ljust(w) if column < 3 else cell.rjust(w) for column, (cell, w) in enumerate(zip(line, widths))
            ]
            return "  ".join(cells).rstrip()

        rule = "-" * len(format_line(["-" * w for w in widths]))
        return "\n".join([format_line(header), rule, *map(format_line, body), rule, format_line(footer)])

    def _repr_html_(self) -> str:
        header, body, footer = self._table()

        def row(cells: list[str], tag: str = "td") -> str:
            return "<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in cells) + "</tr>"

        return (
            "<table><thead>"
            + row(header, "th")
            + "</thead><tbody>"
            + "".join(map(row, body))
            + "</tbody><tfoot>"
            + row(footer, "th")
            + "</tfoot></table>"
        )


def summary(model: nn.Module, input_size: Sequence[int]) -> ModelSummary:
    """Every layer's output shape, parameters and FLOPs for one input of ``input_size``: ``(H, W)``,
    ``(C, H, W)`` or ``(N, C, H, W)`` (a missing batch is 1, missing channels 3). The crops of the
    FCN heads appear as rows too, with their offsets. Runs on the meta device: cheap at any size."""
    input_shape = _input_shape(input_size)
    names = {module: name for name, module in model.named_modules()}
    rows: list[LayerSummary] = []
    counted: set[nn.Module] = set()

    def record_layer(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        params = 0 if module in counted else sum(p.numel() for p in module.parameters(recurse=False))
        counted.add(module)
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
        rows.append(
            LayerSummary(
                names[module] or type(module).__name__,
                type(module).__name__,
                shape,
                params,
                _layer_flops(module, inputs, output),
            )
        )

    def record_crop(name: str, offsets: tuple[int, int], shape: tuple[int, ...]) -> None:
        rows.append(LayerSummary(f"{name} crop", f"Crop at {offsets[0]}, {offsets[1]}", shape, 0, 0))

    leaves = [
        module
        for module in model.modules()
        if next(module.children(), None) is None and not isinstance(module, nn.Identity)
    ]
    handles = [module.register_forward_hook(record_layer) for module in leaves]
    try:
        with _observing_crops(model, record_crop):
            _run_on_meta(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    return ModelSummary(input_shape, rows)


def count_flops(model: nn.Module, input_size: Sequence[int]) -> int:
    """Floating-point operations of one forward pass: 2 x the multiply-adds of every convolution,
    transposed convolution and linear layer (biases, activations, pooling and sums are left out; they
    add well under 1% here). ``input_size`` as for :func:`summary`.

    A 3 x 3 convolution from 3 to 64 channels on a 224 x 224 image with padding 1:
    2 x (64 x 224 x 224 outputs) x (3 x 3 x 3 products each) = 173,408,256 FLOPs.

    >>> count_flops(nn.Conv2d(3, 64, 3, padding=1), (224, 224))
    173408256
    """
    return summary(model, input_size).total_flops


def crop_offsets(model: nn.Module, input_size: Sequence[int]) -> dict[str, tuple[int, int]]:
    """The (top, left) offset of every crop an FCN makes for an input of ``input_size``, keyed by
    ``"score_pool4"``, ``"score_pool3"`` (the skips an FCN-16s/8s has) and ``"final"`` (the cut to
    the input's size). Computed by a meta-device pass, so it is the model's own arithmetic."""
    offsets: dict[str, tuple[int, int]] = {}

    def record_crop(name: str, offset: tuple[int, int], shape: tuple[int, ...]) -> None:
        offsets[name] = offset

    with _observing_crops(model, record_crop) as watched:
        if not watched:
            raise ValueError(f"crop_offsets needs an FCN32s, FCN16s or FCN8s; got a {type(model).__name__}")
        _run_on_meta(model, _input_shape(input_size))
    return offsets


def _input_shape(input_size: Sequence[int]) -> tuple[int, ...]:
    """``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` as ``(N, C, H, W)``: one image, 3 channels by default."""
    size = tuple(int(s) for s in input_size)
    if len(size) not in (2, 3, 4) or min(size) < 1:
        raise ValueError(
            f"input_size must be (H, W), (C, H, W) or (N, C, H, W) with positive sizes, got {tuple(input_size)!r}"
        )
    if len(size) == 2:
        return (1, 3, *size)
    if len(size) == 3:
        return (1, *size)
    return size


def _run_on_meta(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """One forward pass with data-free copies of the weights and the input: shapes only."""
    meta = {
        name: torch.empty_like(tensor, device="meta")
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]
    }
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    with torch.no_grad():
        return functional_call(model, meta, (torch.empty(input_shape, dtype=dtype, device="meta"),))


@contextmanager
def _observing_crops(model: nn.Module, observer):
    """Point every FCN inside ``model`` at ``observer`` for the duration; yields whether there was one."""
    fcns = [module for module in model.modules() if hasattr(module, "on_crop")]
    previous = [fcn.on_crop for fcn in fcns]
    for fcn in fcns:
        fcn.on_crop = observer
    try:
        yield bool(fcns)
    finally:
        for fcn, before in zip(fcns, previous):
            fcn.on_crop = before


def _layer_flops(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, _TRANSPOSED_CONVOLUTIONS):
        # Every input value is multiplied into a k x k patch of each output channel of its group.
        kernel = math.prod(module.kernel_size)
        return 2 * inputs[0].numel() * (module.out_channels // module.groups) * kernel
    if isinstance(module, _CONVOLUTIONS):
        # Every output value is a sum over a k x k patch of each input channel of its group.
        kernel = math.prod(module.kernel_size)
        return 2 * output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0
