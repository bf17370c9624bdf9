"""init_from_coarser: FCN-16s from FCN-32s and FCN-8s from FCN-16s, as in the paper's staged training."""

import pytest
import torch

from fcn_tutorial.models import build_model
from fcn_tutorial.models.staged import init_from_coarser


def trained_like(name, preset, batch_norm=False, seed=0):
    """A net whose every weight (score layers and batch-norm statistics included) is random and non-zero."""
    torch.manual_seed(seed)
    model = build_model(name, 2, preset=preset, width=0.125, batch_norm=batch_norm)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and not isinstance(module, torch.nn.ConvTranspose2d):
                if module.weight.abs().sum() == 0:  # the zero-initialised score layers
                    torch.nn.init.normal_(module.weight, std=0.1)
                torch.nn.init.normal_(module.bias, std=0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def finer_from(name, coarser, batch_norm=False):
    torch.manual_seed(123)  # a different random start: everything shared must come from `coarser`
    finer = build_model(name, 2, preset=coarser.preset, width=0.125, batch_norm=batch_norm)
    return init_from_coarser(finer, coarser).eval()


@pytest.mark.parametrize("preset", ["paper", "compact"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_shared_weights_and_buffers_are_copied_and_new_score_layers_zero(preset, batch_norm):
    fcn32s = trained_like("fcn32s", preset, batch_norm)
    fcn16s = finer_from("fcn16s", fcn32s, batch_norm)
    source, target = fcn32s.state_dict(), fcn16s.state_dict()
    shared = [name for name in source if name in target]
    assert any(name.startswith("backbone.") for name in shared) and "score_fr.weight" in shared
    if batch_norm:
        assert "backbone.norm1_1.running_var" in shared
    for name in shared:
        assert torch.equal(source[name], target[name]), name
    assert fcn16s.score_pool4.weight.abs().sum() == 0 and fcn16s.score_pool4.bias.abs().sum() == 0

    fcn8s = finer_from("fcn8s", trained_like("fcn16s", preset, batch_norm, seed=1), batch_norm)
    assert fcn8s.score_pool4.weight.abs().sum() > 0  # copied from the trained FCN-16s, not zeroed
    assert fcn8s.score_pool3.weight.abs().sum() == 0 and fcn8s.score_pool3.bias.abs().sum() == 0


@pytest.mark.parametrize("preset", ["paper", "compact"])
@pytest.mark.parametrize("finer_name, coarser_name", [("fcn16s", "fcn32s"), ("fcn8s", "fcn16s")])
def test_the_new_skip_adds_nothing_at_the_start(preset, finer_name, coarser_name):
    """Exactly: whatever the new skip's pooling map holds, the output stays the same."""
    finer = finer_from(finer_name, trained_like(coarser_name, preset))
    skip = "pool4" if finer_name == "fcn16s" else "pool3"
    x = torch.rand(2, 3, 96, 128)
    expected = finer(x)

    # a hook that replaces the skip's map by noise on its way from the backbone to the head
    def noisy_skip(module, args, features):
        return features._replace(**{skip: torch.randn_like(getattr(features, skip))})

    finer.backbone.register_forward_hook(noisy_skip)
    assert torch.equal(finer(x), expected)


@pytest.mark.parametrize("preset", ["paper", "compact"])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("finer_name, coarser_name", [("fcn16s", "fcn32s"), ("fcn8s", "fcn16s")])
def test_the_finer_net_starts_as_the_coarser_one_up_to_the_upsampling(preset, batch_norm, finer_name, coarser_name):
    """Not bit for bit: two bilinear upsamplings in a row (2x then 16x) are a smoother interpolation than
    one of 32x. The scores agree closely and the masks almost everywhere."""
    coarser = trained_like(coarser_name, preset, batch_norm)
    finer = finer_from(finer_name, coarser, batch_norm)
    x = torch.rand(2, 3, 160, 224)
    before, after = coarser(x), finer(x)
    assert (after - before).abs().mean() < 0.1 * before.abs().mean()
    assert (after.argmax(1) == before.argmax(1)).float().mean() > 0.95


def test_nets_built_differently_are_refused_with_the_reason():
    fcn32s = build_model("fcn32s", 2, preset="compact", width=0.125)
    with pytest.raises(ValueError, match="same preset"):
        init_from_coarser(build_model("fcn16s", 2, preset="paper", width=0.125), fcn32s)
    with pytest.raises(ValueError, match=r"backbone\.conv1_1\.weight .*same width"):
        init_from_coarser(build_model("fcn16s", 2, preset="compact", width=0.25), fcn32s)
    with pytest.raises(ValueError, match="not coarser than FCN16s: FCN16s has no score_pool3"):
        init_from_coarser(
            build_model("fcn16s", 2, preset="compact", width=0.125),
            build_model("fcn8s", 2, preset="compact", width=0.125),
        )
