"""fcn_tutorial.diagrams: the figures build, and the sizes they label are the sizes the model computes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from fcn_tutorial.diagrams import draw_fcn8s, draw_transposed_convolution, fcn8s_maps, one_pixel_response
from fcn_tutorial.models import bilinear_kernel, build_model

NARROW = 0.0625


def real_shapes(model: torch.nn.Module, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """The shapes of a real forward pass (not the meta pass the diagrams use), caught by hooks."""
    shapes = {}
    modules = {
        "pool1": model.backbone.pool1,
        "pool2": model.backbone.pool2,
        "pool3": model.backbone.pool3,
        "pool4": model.backbone.pool4,
        "pool5": model.backbone.pool5,
        "fc7": model.backbone.fc7,
        "score_fr": model.score_fr,
        "upscore2": model.upscore2,
        "upscore_pool4": model.upscore_pool4,
        "upscore8": model.upscore8,
    }
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
        for name, module in modules.items()
    ]
    with torch.no_grad():
        shapes["output"] = tuple(model(torch.rand(1, 3, *size)).shape[1:])
    for handle in handles:
        handle.remove()
    # A skip's scores have its pooling map's size, cropped to the part it shares with the upsampled map.
    for skip, pool, upscored in [("score_pool4", "pool4", "upscore2"), ("score_pool3", "pool3", "upscore_pool4")]:
        common = [min(a, b) for a, b in zip(shapes[pool][1:], shapes[upscored][1:])]
        shapes[skip] = (model.n_classes, *common)
    return shapes


@pytest.mark.parametrize("preset", ["compact", "paper", "original"])
@pytest.mark.parametrize("size", [(288, 384), (97, 131)])
def test_maps_match_a_real_forward_pass(preset, size):
    model = build_model("fcn8s", 2, preset=preset, width=NARROW).eval()
    maps = fcn8s_maps(model, size)
    for name, shape in real_shapes(model, size).items():
        assert (maps[name].channels, maps[name].height, maps[name].width) == shape, name
    assert (maps["input"].height, maps["input"].width) == size


def test_strides_are_the_size_ratios_of_the_compact_preset():
    maps = fcn8s_maps(build_model("fcn8s", 2, preset="compact", width=NARROW), (288, 384))
    assert [maps[name].stride for name in ["pool1", "pool2", "pool3", "pool4", "pool5", "fc7"]] == [2, 4, 8, 16, 32, 32]
    for feature_map in maps.values():
        assert (288 / feature_map.height, 384 / feature_map.width) == (feature_map.stride, feature_map.stride)
    assert maps["pool4"].size == f"{maps['pool4'].channels} x 18 x 24"


def test_maps_refuse_another_model():
    with pytest.raises(ValueError, match="FCN8s.*FCN16s"):
        fcn8s_maps(build_model("fcn16s", 2, preset="compact", width=NARROW), (64, 64))


@pytest.mark.parametrize(
    "preset, crops", [("paper", ["crop at 5, 5", "crop at 9, 9", "crop at 31, 31"]), ("compact", ["crop at 0, 0"])]
)
def test_architecture_figure_labels_the_models_sizes(preset, crops):
    fig = draw_fcn8s((288, 384), preset=preset)
    try:
        texts = "\n".join(text.get_text() for text in fig.axes[0].texts)
        with torch.device("meta"):
            maps = fcn8s_maps(build_model("fcn8s", 2, preset=preset), (288, 384))
        for feature_map in maps.values():
            assert f"{feature_map.name}\n{feature_map.size}" in texts
        for crop in crops:
            assert crop in texts
        assert "4096 x" in texts  # full width: fc7 has 4096 channels
        assert f"{preset} preset" in fig.axes[0].get_title()
    finally:
        plt.close(fig)


def test_architecture_figure_uses_a_given_model():
    model = build_model("fcn8s", 3, preset="original", width=NARROW)
    fig = draw_fcn8s((500, 574), model=model)
    try:
        texts = [text.get_text() for text in fig.axes[0].texts]
        assert "crop at 10, 9" in texts  # the 2017 centre crop of pool3 on a 500 x 574 frame
        assert "crop at 18, 29" in texts
        assert any(text.startswith("output\n3 x 500 x 574") for text in texts)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_one_pixel_spreads_a_copy_of_the_kernel(stride):
    kernel = torch.rand(2 * stride, 2 * stride, generator=torch.Generator().manual_seed(stride))
    response = one_pixel_response(kernel, stride, input_size=(3, 4), position=(1, 2))
    expected = torch.zeros((3 - 1) * stride + 2 * stride, (4 - 1) * stride + 2 * stride)
    expected[stride : stride + 2 * stride, 2 * stride : 2 * stride + 2 * stride] = kernel
    torch.testing.assert_close(response, expected)
    bilinear = one_pixel_response(bilinear_kernel(1, 1, 2 * stride)[0, 0], stride)
    assert bilinear.sum().item() == pytest.approx(stride * stride)  # each input pixel spreads over s x s outputs


def test_transposed_convolution_figure_shows_interpolation():
    fig = draw_transposed_convolution(2)
    try:
        assert len(fig.axes) == 4
        line = fig.axes[2]
        outputs = next(artist for artist in line.lines if artist.get_label() == "output = sum of tents")
        inputs = next(artist for artist in line.lines if artist.get_label() == "input values")
        x, y = outputs.get_xdata(), outputs.get_ydata()
        centres, values = inputs.get_xdata(), inputs.get_ydata()
        inside = (x >= centres[0]) & (x <= centres[-1])
        assert inside.sum() >= 10
        np.testing.assert_allclose(y[inside], np.interp(x[inside], centres, values), atol=1e-6)
        assert not np.allclose(y[~inside], np.interp(x[~inside], centres, values))  # the borders fall off
    finally:
        plt.close(fig)
