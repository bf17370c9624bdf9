"""fcn_tutorial.models: shapes at every input size, the three presets, weights, summary, FLOPs, crops.

Forward passes use narrow networks (width 1/16) to stay fast on a CPU; parameter counts use full-width
networks built on the meta device (no memory, no arithmetic).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_tutorial.models import (
    MODELS,
    PRESETS,
    FCN8s,
    FCN16s,
    FCN32s,
    VGG16Backbone,
    bilinear_kernel,
    build_model,
    count_flops,
    crop_offsets,
    summary,
)

NARROW = 0.0625


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def full_width_on_meta(name: str, preset: str, n_classes: int = 2) -> nn.Module:
    with torch.device("meta"):
        return build_model(name, n_classes, preset=preset)


# --- sizes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_logits_have_the_input_size(name, preset):
    model = build_model(name, n_classes=3, preset=preset, width=NARROW).eval()
    for batch, height, width in [(2, 32, 32), (2, 33, 47), (1, 289, 383)]:
        with torch.no_grad():
            logits = model(torch.rand(batch, 3, height, width))
        assert logits.shape == (batch, 3, height, width)
        assert torch.isfinite(logits).all()


def test_logits_have_the_input_size_at_1200():
    model = build_model("fcn8s", 2, preset="paper", width=NARROW).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 1200, 1200)).shape == (1, 2, 1200, 1200)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_size_from_32_to_1200_on_the_meta_device(name, preset):
    # The same forward code as above, run on shapes only: the crops must fit at every size.
    model = build_model(name, 2, preset=preset, width=NARROW)
    sizes = [
        (32, 32),
        (33, 47),
        (47, 33),
        (63, 65),
        (97, 131),
        (224, 224),
        (287, 383),
        (288, 384),
        (289, 383),
        (500, 574),
        (529, 622),
        (777, 1001),
        (1024, 1199),
        (1199, 1200),
        (1200, 1200),
    ]
    for height, width in sizes:
        assert summary(model, (height, width))[-1].output_shape == (1, 2, height, width), (height, width)


def test_inputs_the_model_cannot_take_are_refused_clearly():
    model = build_model("fcn8s", 2, preset="original", width=NARROW)
    with pytest.raises(ValueError, match="too small"):
        model(torch.rand(1, 3, 20, 40))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model(torch.rand(1, 1, 64, 64))


# --- presets ---------------------------------------------------------------------------------------------


def test_paper_fcn8s_has_the_caffe_parameter_count():
    assert n_params(full_width_on_meta("fcn8s", "paper")) == 134_271_430


def test_original_fcn8s_has_the_tutorial_parameter_count():
    # The same network plus one bias per class in each of the three transposed convolutions.
    assert n_params(full_width_on_meta("fcn8s", "original")) == 134_271_436


def test_the_backbone_is_shared_and_named_as_in_the_paper():
    model = build_model("fcn8s", 2, width=NARROW)
    assert sum(isinstance(m, VGG16Backbone) for m in model.modules()) == 1
    names = {name for name, _ in model.named_modules()}
    for layer in ["conv1_1", "conv3_3", "conv5_3", "pool3", "pool4", "pool5", "fc6", "fc7"]:
        assert f"backbone.{layer}" in names
    assert {"score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3", "upscore8"} <= names
    fcn16s_names = {name for name, _ in FCN16s(2, width=NARROW).named_modules()}
    assert {"score_fr", "upscore2", "score_pool4", "upscore16"} <= fcn16s_names
    assert {"score_fr", "upscore32"} <= {name for name, _ in FCN32s(2, width=NARROW).named_modules()}


@pytest.mark.parametrize("preset", PRESETS)
def test_backbone_padding_and_pooling_per_preset(preset):
    backbone = VGG16Backbone(preset, width=NARROW)
    assert backbone.conv1_1.padding == ((1, 1) if preset == "compact" else (100, 100))
    assert backbone.pool3.ceil_mode == (preset != "original")
    assert backbone.fc6.kernel_size == (7, 7)
    assert backbone.fc6.padding == ((3, 3) if preset == "compact" else (0, 0))
    assert isinstance(backbone.drop6, nn.Dropout) and backbone.drop6.p == 0.5


def test_paper_preset_layers():
    model = FCN8s(2, preset="paper", width=NARROW)
    for layer, kernel, stride in [(model.upscore2, 4, 2), (model.upscore_pool4, 4, 2), (model.upscore8, 16, 8)]:
        assert (layer.kernel_size, layer.stride, layer.bias) == ((kernel, kernel), (stride, stride), None)
        assert torch.equal(layer.weight, bilinear_kernel(2, 2, kernel))
    assert FCN16s(2, width=NARROW).upscore16.kernel_size == (32, 32)
    assert FCN32s(2, width=NARROW).upscore32.kernel_size == (64, 64)
    assert isinstance(model.score_activation, nn.Identity)  # linear score layers
    assert not model.score_fr.weight.any()  # zero-initialised, as in the paper


def test_original_preset_layers():
    model = FCN8s(2, preset="original", width=NARROW)
    assert isinstance(model.score_activation, nn.ReLU)
    for layer in [model.upscore2, model.upscore_pool4, model.upscore8, model.backbone.conv3_1, model.score_pool3]:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.5 * bound
        assert layer.bias is not None and not layer.bias.any()
    assert not torch.equal(model.upscore8.weight, bilinear_kernel(2, 2, 16))


def test_original_crop_offsets_match_the_tutorial():
    model = build_model("fcn8s", 2, preset="original", width=NARROW)
    assert crop_offsets(model, (224, 224)) == {"score_pool4": (5, 5), "score_pool3": (9, 9), "final": (28, 28)}
    offsets = crop_offsets(model, (500, 574))
    assert [offsets[key][0] for key in ("score_pool4", "score_pool3", "final")] == [5, 10, 18]
    assert [offsets[key][1] for key in ("score_pool4", "score_pool3", "final")] == [5, 9, 29]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("fcn8s", {"score_pool4": (5, 5), "score_pool3": (9, 9), "final": (31, 31)}),
        ("fcn16s", {"score_pool4": (5, 5), "final": (27, 27)}),
        ("fcn32s", {"final": (19, 19)}),
    ],
)
def test_paper_crop_offsets_are_the_caffe_ones(name, expected):
    model = build_model(name, 2, preset="paper", width=NARROW)
    assert crop_offsets(model, (224, 224)) == expected
    assert crop_offsets(model, (289, 383)) == expected


def test_compact_crops_only_trim_the_end():
    model = build_model("fcn8s", 2, preset="compact", width=NARROW)
    assert set(crop_offsets(model, (289, 383)).values()) == {(0, 0)}


def test_compact_upsampling_is_bilinear_interpolation_of_the_scores():
    # With bilinear kernels and padding factor // 2, FCN-32s compact upsamples score_fr exactly like
    # F.interpolate(bilinear): the maps line up at the top-left corner (borders aside).
    model = FCN32s(2, preset="compact", width=NARROW).eval()
    nn.init.normal_(model.score_fr.weight)
    scores = {}
    model.score_fr.register_forward_hook(lambda module, inputs, output: scores.setdefault("fr", output))
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 128, 192))
    expected = F.interpolate(scores["fr"], scale_factor=32, mode="bilinear", align_corners=False)
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    torch.testing.assert_close(logits[inner], expected[inner])


# --- width, arguments ------------------------------------------------------------------------------------


def test_width_scales_every_channel_count():
    model = build_model("fcn8s", 2, width=0.25)
    backbone = model.backbone
    assert [
        backbone.conv1_1.out_channels,
        backbone.conv3_1.out_channels,
        backbone.conv5_3.out_channels,
        backbone.fc6.out_channels,
        backbone.fc7.out_channels,
    ] == [16, 64, 128, 1024, 1024]
    assert model.score_fr.in_channels == 1024 and model.score_pool3.in_channels == 64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "fcn4s"}, "unknown model 'fcn4s'"),
        ({"preset": "caffe"}, "unknown preset 'caffe'"),
        ({"n_classes": 0}, "n_classes must be a positive integer"),
        ({"width": 0}, "width must be a positive number"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"name": "fcn8s", "n_classes": 2, "preset": "paper", "width": NARROW, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_model(arguments.pop("name"), arguments.pop("n_classes"), **arguments)


def test_build_model_accepts_spellings_of_the_name():
    assert isinstance(build_model("FCN-8s", 2, width=NARROW), FCN8s)


# --- pretrained backbone -----------------------------------------------------------------------------------


def test_vgg16_weights_from_a_local_file_reproduce_vgg16(tmp_path):
    from torchvision.models import vgg16

    vgg = vgg16(weights=None).eval()
    path = tmp_path / "vgg16.pth"
    torch.save(vgg.state_dict(), path)
    model = build_model("fcn8s", 2, preset="compact", pretrained_backbone=path).eval()
    backbone = model.backbone
    assert torch.equal(backbone.conv1_1.weight, vgg.features[0].weight)
    assert torch.equal(backbone.conv5_3.bias, vgg.features[28].bias)

    # The convolutions: pool5 equals VGG16's features (compact pads like VGG; 64 is a multiple of 32).
    pool5 = {}
    backbone.pool5.register_forward_hook(lambda module, inputs, output: pool5.setdefault("out", output))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        model(x)
        torch.testing.assert_close(pool5["out"], vgg.features(x))

        # fc6 and fc7: on a 7 x 7 pool5 map, the centre of the padded fc6 sees the whole map, as the
        # classifier's first layer does: classifier[0..4] = Linear, ReLU, Dropout, Linear, ReLU.
        z = torch.randn(1, 512, 7, 7)
        ours = backbone.relu7(backbone.fc7(backbone.relu6(backbone.fc6(z))))[0, :, 3, 3]
        theirs = vgg.classifier[:5](z.flatten(1))[0]
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_pretrained_backbone_true_asks_torchvision_for_the_imagenet_weights(monkeypatch):
    from torchvision.models import VGG16_Weights, vgg16

    with torch.device("meta"):  # shapes only: nothing is downloaded, nothing allocated
        state = vgg16().state_dict()
    requested = []

    def fake_get_state_dict(self, *args, **kwargs):
        requested.append(self)
        return state

    monkeypatch.setattr(VGG16_Weights, "get_state_dict", fake_get_state_dict)
    with torch.device("meta"):
        build_model("fcn8s", 2, pretrained_backbone=True)
    assert requested == [VGG16_Weights.IMAGENET1K_V1]


def test_vgg16_weights_need_full_width():
    with pytest.raises(ValueError, match="width=1.0"):
        build_model("fcn8s", 2, width=0.5, pretrained_backbone=True)


def test_bad_vgg16_weight_files_are_named(tmp_path):
    garbage, other = tmp_path / "garbage.pth", tmp_path / "resnet.pth"
    garbage.write_bytes(b"not a checkpoint")
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with torch.device("meta"):  # full-width networks without the memory: the file is read first
        with pytest.raises(FileNotFoundError, match="missing.pth"):
            build_model("fcn32s", 2, pretrained_backbone=tmp_path / "missing.pth")
        with pytest.raises(ValueError, match="garbage.pth"):
            build_model("fcn32s", 2, pretrained_backbone=garbage)
        with pytest.raises(ValueError, match="resnet.pth is not a torchvision VGG16 state dict"):
            build_model("fcn32s", 2, pretrained_backbone=other)


# --- bilinear kernel -----------------------------------------------------------------------------------------


def test_bilinear_kernel_values():
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    weight = bilinear_kernel(2, 2, 4)
    assert weight.shape == (2, 2, 4, 4)
    torch.testing.assert_close(weight[0, 0], tent[:, None] * tent[None, :])
    torch.testing.assert_close(weight[1, 1], weight[0, 0])
    assert not weight[0, 1].any() and not weight[1, 0].any()
    odd = torch.tensor([0.5, 1.0, 0.5])
    torch.testing.assert_close(bilinear_kernel(1, 1, 3)[0, 0], odd[:, None] * odd[None, :])


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_bilinear_kernel_makes_a_transposed_convolution_interpolate(factor):
    coarse = torch.rand(1, 3, 5, 7)
    upsampled = F.conv_transpose2d(coarse, bilinear_kernel(3, 3, 2 * factor), stride=factor, padding=factor // 2)
    expected = F.interpolate(coarse, scale_factor=factor, mode="bilinear", align_corners=False)
    inner = (slice(None), slice(None), slice(factor // 2, -factor // 2), slice(factor // 2, -factor // 2))
    torch.testing.assert_close(upsampled[inner], expected[inner])


# --- summary, FLOPs, crops ---------------------------------------------------------------------------------


def test_summary_lists_layers_shapes_and_parameters():
    model = build_model("fcn8s", 2, preset="compact", width=NARROW)
    table = summary(model, (1, 3, 96, 160))
    rows = {row.name: row for row in table}
    assert rows["backbone.conv1_1"].output_shape == (1, 4, 96, 160)
    assert rows["backbone.pool3"].output_shape == (1, 16, 12, 20)
    assert rows["backbone.pool4"].output_shape == (1, 32, 6, 10)
    assert rows["backbone.fc7"].output_shape == (1, 256, 3, 5)
    assert rows["score_pool3 crop"].type == "Crop at 0, 0"
    assert table[-1].name == "final crop" and table[-1].output_shape == (1, 2, 96, 160)
    assert rows["backbone.fc6"].params == 32 * 256 * 7 * 7 + 256
    assert table.total_params == n_params(model)
    text = str(table)
    assert "backbone.conv1_1" in text and f"{n_params(model):,}" in text
    assert table._repr_html_().startswith("<table>")
    # The model itself is untouched: real weights, no observer left behind.
    assert model.backbone.conv1_1.weight.device.type == "cpu" and model.on_crop is None


def test_summary_of_the_full_network_at_1200_is_cheap():
    table = summary(full_width_on_meta("fcn8s", "paper"), (1200, 1200))
    assert table[-1].output_shape == (1, 2, 1200, 1200)
    assert table.total_params == 134_271_430


def test_count_flops_matches_a_hand_computation():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 2, 4, stride=2),
        nn.Flatten(),
        nn.Linear(2 * 18 * 18, 10),
    )
    conv = 2 * (4 * 8 * 8) * (3 * 3 * 3)  # each output value: a 3 x 3 x 3 patch of products and sums
    transposed = 2 * (4 * 8 * 8) * (2 * 4 * 4)  # each input value: spread over 2 channels x 4 x 4
    linear = 2 * 10 * (2 * 18 * 18)
    assert count_flops(model, (3, 8, 8)) == conv + transposed + linear == 43_168


def test_count_flops_of_fcn32s_paper_first_and_last_layers():
    model = full_width_on_meta("fcn32s", "paper")
    rows = {row.name: row for row in summary(model, (224, 224))}
    assert rows["backbone.conv1_1"].flops == 2 * (64 * 422 * 422) * (3 * 3 * 3)  # 224 + 2 * 100 - 2
    # 422 -> pool1 211 -> 106 -> 53 -> 27 -> pool5 14 (ceil), so the unpadded 7 x 7 fc6 gives 8 x 8.
    assert rows["backbone.fc6"].flops == 2 * (4096 * 8 * 8) * (512 * 7 * 7)
    assert rows["upscore32"].flops == 2 * (2 * 8 * 8) * (2 * 64 * 64)
    assert count_flops(model, (224, 224)) == summary(model, (224, 224)).total_flops


def test_crop_offsets_needs_an_fcn():
    with pytest.raises(ValueError, match="needs an FCN32s, FCN16s or FCN8s"):
        crop_offsets(nn.Conv2d(3, 2, 1), (32, 32))


# --- memory format and precision ------------------------------------------------------------------------------


def test_channels_last_and_bfloat16_autocast():
    model = build_model("fcn8s", 2, preset="paper", width=NARROW).eval()
    nn.init.normal_(model.score_fr.weight, std=0.1)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        reference = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model_cl(x.to(memory_format=torch.channels_last)), reference, rtol=1e-4, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model_cl(x.to(memory_format=torch.channels_last))
    assert low.shape == (1, 2, 64, 96) and low.dtype == torch.bfloat16
    assert (low.float() - reference).abs().max() < 0.05 * reference.abs().max() + 1e-3


def test_gradients_reach_every_layer_of_the_original_preset():
    model = build_model("fcn8s", 2, preset="original", width=NARROW)
    model(torch.rand(2, 3, 64, 64)).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_batch_norm_adds_one_norm_per_convolution_and_keeps_sizes():
    plain = build_model("fcn8s", 2, preset="compact", width=0.125)
    normed = build_model("fcn8s", 2, preset="compact", width=0.125, batch_norm=True)
    norms = [m for m in normed.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 13  # conv1_1 ... conv5_3, as in torchvision's vgg16_bn
    extra = sum(p.numel() for p in normed.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == sum(2 * m.num_features for m in norms)
    assert tuple(normed(torch.rand(2, 3, 33, 47)).shape) == (2, 2, 33, 47)
    # Without batch_norm the network is unchanged: the paper's parameter count still holds.
    with torch.device("meta"):
        assert sum(p.numel() for p in build_model("fcn8s", 2).parameters()) == 134_271_430


def test_vgg16_bn_weights_from_a_local_file_reproduce_vgg16_bn(tmp_path):
    from torchvision.models import vgg16_bn

    vgg = vgg16_bn(weights=None)
    with torch.no_grad():  # give the batch norms statistics that are not the defaults
        for module in vgg.features:
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    vgg.eval()
    path = tmp_path / "vgg16_bn.pth"
    torch.save(vgg.state_dict(), path)
    model = build_model("fcn8s", 2, preset="compact", batch_norm=True, pretrained_backbone=path).eval()
    pool5 = {}
    model.backbone.pool5.register_forward_hook(lambda module, inputs, output: pool5.setdefault("out", output))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        model(x)
        torch.testing.assert_close(pool5["out"], vgg.features(x))
    # A plain vgg16 file does not fit a batch-norm backbone: the error says which file is expected.
    with pytest.raises(ValueError, match="vgg16_bn"):
        from torchvision.models import vgg16

        torch.save(vgg16(weights=None).state_dict(), tmp_path / "plain.pth")
        build_model("fcn8s", 2, preset="compact", batch_norm=True, pretrained_backbone=tmp_path / "plain.pth")
