"""engine.train_one_epoch itself, through every precision path: fp32, fp16 with a GradScaler, bf16, channels-last.

Each test runs the real loop on a tiny network and compares the weights it ends with against a plain fp32
run of the same loop. The optimiser is SGD, whose step is proportional to the gradient: a gradient left
scaled by the GradScaler's 65536 moves the weights 65536 times too far, which Adam (scale-invariant) would hide.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fcn_tutorial import engine
from fcn_tutorial.engine import NonFiniteLossError, segmentation_loss, train_one_epoch

CPU = torch.device("cpu")


def tiny_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))


def batches(count: int = 3, size: int = 12) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` batches of two frames whose class is mostly readable from the red channel; a void border."""
    generator = torch.Generator().manual_seed(1)
    result = []
    for _ in range(count):
        images = torch.rand(2, 3, size, size, generator=generator)
        masks = (images[:, 0] > 0.5).long()
        masks[:, 0] = 255
        result.append((images, masks))
    return result


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def sgd_epoch(*, amp_dtype=None, scaler=None, channels_last=False, lr=0.5, count=3):
    """One epoch of train_one_epoch with SGD: (mean loss, weights before, weights after)."""
    model = tiny_network()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    before = weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss = train_one_epoch(
        model,
        batches(count),
        optimizer,
        CPU,
        scaler=scaler,
        amp_dtype=amp_dtype,
        channels_last=channels_last,
        progress=False,
    )
    return loss, before, weights(model)


def largest_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def steps_like(after: dict, reference_after: dict, before: dict, tolerance: float) -> bool:
    """Whether ``after`` lies within ``tolerance`` of the reference step, relative to how far that step went."""
    moved = largest_difference(reference_after, before)
    assert moved > 1e-3  # the reference run did move the weights: the comparison means something
    return largest_difference(after, reference_after) <= tolerance * moved


class ScalerThatForgetsToUnscale(torch.amp.GradScaler):
    """The bug the fp16 test must catch: ``optimizer.step()`` on gradients that are still multiplied by the scale."""

    def step(self, optimizer, *args, **kwargs):
        return optimizer.step()

    def update(self, new_scale=None):
        pass  # torch's update() would notice that step() checked nothing; a hand-written loop might not


def test_the_returned_loss_is_the_mean_batch_loss_of_the_epoch():
    model = tiny_network()
    data = batches()
    with torch.no_grad():
        expected = sum(segmentation_loss(model(images), masks).item() for images, masks in data) / len(data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay put: every batch sees the same model
    assert train_one_epoch(model, data, optimizer, CPU, progress=False) == pytest.approx(expected, rel=1e-6)


def test_an_fp32_epoch_lowers_the_loss_and_steps_the_scheduler_every_batch():
    model = tiny_network()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    first = train_one_epoch(model, batches(), optimizer, CPU, scheduler=scheduler, progress=False)
    assert optimizer.param_groups[0]["lr"] == 0.5 * 0.5**3  # one scheduler step per batch
    second = train_one_epoch(model, batches(), optimizer, CPU, progress=False)
    assert second < first


def test_fp16_with_a_grad_scaler_steps_like_fp32():
    fp32_loss, before, fp32 = sgd_epoch()
    scaler = torch.amp.GradScaler("cpu")
    fp16_loss, _, fp16 = sgd_epoch(amp_dtype=torch.float16, scaler=scaler)
    assert scaler.get_scale() == 65536.0  # no step was skipped: the comparison is of three real steps
    assert fp16_loss == pytest.approx(fp32_loss, rel=1e-2)
    assert steps_like(fp16, fp32, before, tolerance=0.02)


def test_the_fp16_comparison_catches_a_scaler_that_does_not_unscale():
    """The test above would fail on the classic bug (``scaler.step`` replaced by ``optimizer.step``)."""
    _, before, fp32 = sgd_epoch(count=1)
    _, _, broken = sgd_epoch(amp_dtype=torch.float16, scaler=ScalerThatForgetsToUnscale("cpu"), count=1)
    assert not steps_like(broken, fp32, before, tolerance=0.02)


def test_fp16_runs_the_network_in_half_precision_and_the_loss_in_fp32():
    model = tiny_network()
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    real_loss = engine.segmentation_loss
    loss_dtypes = []

    def recording_loss(logits, target, weight=None, **options):
        loss = real_loss(logits, target, weight, **options)
        loss_dtypes.append(loss.dtype)
        return loss

    engine.segmentation_loss = recording_loss
    try:
        train_one_epoch(
            model,
            batches(1),
            optimizer,
            CPU,
            scaler=torch.amp.GradScaler("cpu"),
            amp_dtype=torch.float16,
            progress=False,
        )
    finally:
        engine.segmentation_loss = real_loss
    assert seen == [torch.float16] and loss_dtypes == [torch.float32]


def test_bf16_steps_like_fp32():
    _, before, fp32 = sgd_epoch()
    loss, _, bf16 = sgd_epoch(amp_dtype=torch.bfloat16)
    assert math.isfinite(loss)
    assert steps_like(bf16, fp32, before, tolerance=0.1)  # bf16 keeps 8 bits of mantissa: a looser tolerance
    model, model_dtypes = tiny_network(), []
    model.register_forward_hook(lambda module, inputs, output: model_dtypes.append(output.dtype))
    train_one_epoch(
        model, batches(1), torch.optim.SGD(model.parameters(), lr=0.1), CPU, amp_dtype=torch.bfloat16, progress=False
    )
    assert model_dtypes == [torch.bfloat16]


def test_an_inf_gradient_is_skipped_by_the_scaler_and_leaves_the_weights_unchanged():
    model = tiny_network()
    before = weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu")
    # The loss stays finite; only the gradient of one weight overflows, as fp16 gradients do.
    model[0].weight.register_hook(lambda grad: torch.full_like(grad, math.inf))
    loss = train_one_epoch(model, batches(2), optimizer, CPU, scaler=scaler, amp_dtype=torch.float16, progress=False)
    assert math.isfinite(loss)
    after = weights(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # both steps skipped, every tensor untouched
    assert scaler.get_scale() == 65536.0 / 4  # and the scale halved after each of them
    assert optimizer.state_dict()["state"] == {}  # no momentum built up from a skipped step


def test_a_non_finite_loss_stops_before_the_weights_change():
    model = tiny_network()
    before = weights(model)
    data = batches(2)
    data[1][0][0, 0, 0, 0] = math.nan  # the second batch: its loss is NaN
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with pytest.raises(NonFiniteLossError, match="batch 2"):
        train_one_epoch(model, data, optimizer, CPU, progress=False)
    first_step_only = tiny_network()
    train_one_epoch(
        first_step_only, data[:1], torch.optim.SGD(first_step_only.parameters(), lr=0.5), CPU, progress=False
    )
    assert all(torch.equal(weights(model)[k], weights(first_step_only)[k]) for k in before)


def test_channels_last_steps_like_contiguous():
    _, before, contiguous = sgd_epoch()
    model = tiny_network().to(memory_format=torch.channels_last)
    layouts = []
    model.register_forward_pre_hook(
        lambda module, inputs: layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last))
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    train_one_epoch(model, batches(), optimizer, CPU, channels_last=True, progress=False)
    assert layouts == [True, True, True]  # the frames did reach the network in channels-last layout
    assert steps_like(weights(model), contiguous, before, tolerance=1e-4)


def test_class_weights_reach_the_loss():
    """With lr 0 the epoch's loss is the weighted cross-entropy of the initial network, by the formula."""
    model = tiny_network()
    data = batches(1)
    images, masks = data[0]
    class_weights = torch.tensor([0.25, 4.0])
    with torch.no_grad():
        log_probabilities = torch.log_softmax(model(images), dim=1)
    kept = masks != 255
    picked = log_probabilities.gather(1, masks.clamp(max=1)[:, None])[:, 0]
    pixel_weights = class_weights[masks.clamp(max=1)]
    expected = -(pixel_weights * picked)[kept].sum() / pixel_weights[kept].sum()  # sum w_y * -log p_y / sum w_y
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    weighted = train_one_epoch(model, data, optimizer, CPU, class_weights=class_weights, progress=False)
    plain = train_one_epoch(model, data, optimizer, CPU, progress=False)
    assert weighted == pytest.approx(expected.item(), rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)
