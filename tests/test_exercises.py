"""Exercise checkers: a correct answer passes, each typical mistake fails with the hint that names it.

By default a failing checker raises ``ExerciseFailed`` (an ``AssertionError``, so that autograders count
the test as failed); ``checks.check_*`` below are the same checkers with ``raise_on_failure=False``, which
return the failing verdict instead, so that each hint can be asserted."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fcn_tutorial import exercises
from fcn_tutorial.models import bilinear_kernel, build_model, crop_offsets

checks = SimpleNamespace(
    **{
        name: partial(getattr(exercises, name), raise_on_failure=False)
        for name in dir(exercises)
        if name.startswith("check_")
    }
)


def expect(result, passed: bool, *hint_words: str) -> None:
    assert isinstance(result, exercises.CheckResult)
    assert result.passed is passed, result.message
    assert result.message.startswith("Correct!" if passed else "Not yet:")
    for word in hint_words:
        assert word in result.message, result.message


def test_the_verdict_is_printed_once(capsys):
    result = exercises.check_upsampled_size(
        lambda size, kernel, stride, padding=0: (size - 1) * stride - 2 * padding + kernel
    )
    assert capsys.readouterr().out == result.message + "\n"
    assert bool(result) and str(result) == result.message


def test_a_failing_check_raises_an_assertion_error_whose_message_is_the_hint(capsys):
    with pytest.raises(AssertionError, match="^Not yet: .*convolution's formula") as failure:
        exercises.check_upsampled_size(lambda s, k, st, p=0: (s + 2 * p - k) // st + 1)
    assert isinstance(failure.value, exercises.ExerciseFailed)
    assert failure.value._render_traceback_() == [str(failure.value)]  # IPython shows the hint, not a traceback
    assert capsys.readouterr().out == ""  # shown once, as the error
    result = exercises.check_upsampled_size(lambda s, k, st, p=0: s * st, raise_on_failure=False)
    assert not result and capsys.readouterr().out == result.message + "\n"


def test_every_checker_raises_on_a_stub():
    def stub(*args, **kwargs):
        raise NotImplementedError

    checkers = [getattr(exercises, name) for name in dir(exercises) if name.startswith("check_")]
    assert len(checkers) >= 11
    for checker in checkers:
        with pytest.raises(exercises.ExerciseFailed, match="not implemented yet"):
            checker(stub)


# --- conv_output_size --------------------------------------------------------------------------------


def test_conv_output_size():
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: (s + 2 * p - k) // st + 1), True)
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: (s - k) // st + 1), False, "both")
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: math.ceil((s + 2 * p - k) / st) + 1), False, "floor")
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: (s + 2 * p - k) / st + 1), False, "`//`")
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: None), False, "return")


def test_a_stub_that_raises_is_not_yet_implemented():
    def stub(size, kernel, stride=1, padding=0):
        raise NotImplementedError("your code here")

    expect(checks.check_conv_output_size(stub), False, "not implemented")


# --- upsampled size ----------------------------------------------------------------------------------


def test_upsampled_size_matches_conv_transpose():
    def correct(size, kernel, stride, padding=0):
        return (size - 1) * stride - 2 * padding + kernel

    layer = torch.nn.ConvTranspose2d(1, 1, 16, stride=8, padding=4)
    assert layer(torch.zeros(1, 1, 9, 9)).shape[-1] == correct(9, 16, 8, 4)
    expect(checks.check_upsampled_size(correct), True)
    expect(checks.check_upsampled_size(lambda s, k, st, p=0: s * st), False, "kernel - stride")
    expect(checks.check_upsampled_size(lambda s, k, st, p=0: (s + 2 * p - k) // st + 1), False, "convolution's formula")
    expect(checks.check_upsampled_size(lambda s, k, st, p=0: (s - 1) * st + k), False, "removes")


# --- exact upsampling --------------------------------------------------------------------------------


def test_exact_upsampling():
    expect(checks.check_exact_upsampling(lambda f: (2 * f - f % 2, f, f // 2)), True)
    expect(checks.check_exact_upsampling(lambda f: [2 * f - f % 2, f, f // 2]), True)  # a list is fine
    expect(checks.check_exact_upsampling(lambda f: (2 * f, f, 0)), False, "kernel - stride must equal 2 * padding")
    expect(checks.check_exact_upsampling(lambda f: (2 * f, 2 * f, f // 2)), False, "stride must be the factor")
    expect(checks.check_exact_upsampling(lambda f: (f, f, 0)), False, "do not overlap")
    expect(checks.check_exact_upsampling(lambda f: (2 * f + 2 - f % 2, f, f // 2 + 1)), False, "2 * factor")
    expect(checks.check_exact_upsampling(lambda f: (2 * f, f, f / 2)), False, "float")
    expect(checks.check_exact_upsampling(lambda f: None), False, "return")


# --- confusion matrix ------------------------------------------------------------------------------


def confusion_matrix(prediction, target, n_classes, ignore_index=255):
    counted = target != ignore_index
    index = n_classes * target[counted] + prediction[counted]
    return torch.bincount(index, minlength=n_classes**2).reshape(n_classes, n_classes)


def test_confusion_matrix():
    expect(checks.check_confusion_matrix(confusion_matrix), True)
    expect(checks.check_confusion_matrix(lambda p, t, n, ignore_index=255: confusion_matrix(p, t, n).T), False, "Rows")
    expect(
        checks.check_confusion_matrix(
            lambda p, t, n, ignore_index=255: confusion_matrix(p, t.masked_fill(t == 255, 0), n)
        ),
        False,
        "not void",
    )
    expect(
        checks.check_confusion_matrix(
            lambda p, t, n, ignore_index=255: torch.bincount((n * t + p)[t != 255]).reshape(-1, n)
        ),
        False,
        "minlength",
    )
    expect(
        checks.check_confusion_matrix(
            lambda p, t, n, ignore_index=255: torch.bincount((n * t + p).flatten()).reshape(n, n)
        ),
        False,
        "void",
    )
    expect(
        checks.check_confusion_matrix(lambda p, t, n, ignore_index=255: torch.bincount((n * t + p).flatten())),
        False,
        "void",
    )


# --- Jaccard from a confusion matrix -----------------------------------------------------------------


def jaccard(confusion):
    confusion = confusion.double()
    tp = confusion.diag()
    return tp / (confusion.sum(0) + confusion.sum(1) - tp)


def test_jaccard_from_confusion():
    expect(checks.check_jaccard_from_confusion(jaccard), True)
    expect(checks.check_jaccard_from_confusion(lambda c: jaccard(c).tolist()), True)  # a list is fine


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c: c.double().diag() / c.double().sum(0), "false negatives"),
        (lambda c: c.double().diag() / c.double().sum(1), "false positives"),
        (lambda c: c.double().diag() / c.sum(), "not by all pixels"),
        (lambda c: torch.nan_to_num(jaccard(c)), "nan"),
        (lambda c: c.diag() / (c.sum(0) + c.sum(1)), "twice"),
        (lambda c: 2 * c.diag() / (c.sum(0) + c.sum(1)).double(), "Dice"),
        (lambda c: c.diag() // (c.sum(0) + c.sum(1) - c.diag()), "Integer division"),
        (lambda c: jaccard(c).mean(), "one value per class"),
    ],
)
def test_jaccard_mistakes_get_their_hint(wrong, hint):
    expect(checks.check_jaccard_from_confusion(wrong), False, hint)


# --- pixel accuracy ----------------------------------------------------------------------------------


def test_pixel_accuracy():
    def correct(prediction, target, ignore_index=255):
        counted = target != ignore_index
        return (prediction[counted] == target[counted]).double().mean().item()

    expect(checks.check_pixel_accuracy(correct), True)
    expect(checks.check_pixel_accuracy(lambda p, t, ignore_index=255: (p == t).double().mean()), False, "Void pixels")
    expect(
        checks.check_pixel_accuracy(
            lambda p, t, ignore_index=255: ((p == t) & (t != ignore_index)).sum().item() / t.numel()
        ),
        False,
        "non-void pixels",
    )
    expect(
        checks.check_pixel_accuracy(
            lambda p, t, ignore_index=255: ((p == t) | (t == ignore_index)).double().mean().item()
        ),
        False,
        "counted as correct",
    )
    expect(checks.check_pixel_accuracy(lambda p, t, ignore_index=255: 100 * correct(p, t)), False, "percentage")


# --- data: polyp fraction and a joint random crop ----------------------------------------------------


def polyp_fraction(mask):
    counted = mask != 255
    return (mask[counted] == 1).double().mean().item() if counted.any() else float("nan")


def test_polyp_fraction():
    expect(checks.check_polyp_fraction(polyp_fraction), True)
    expect(checks.check_polyp_fraction(lambda m: (m == 1).double().mean().item()), False, "denominator")
    expect(
        checks.check_polyp_fraction(lambda m: (m > 0).sum().item() / max(1, (m != 255).sum().item())),
        False,
        "mask == 1",
    )
    expect(checks.check_polyp_fraction(lambda m: 0.0 if (m == 255).all() else polyp_fraction(m)), False, "nan")


def random_crop(image, mask, size, generator):
    bottom, right = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
    image = F.pad(image, (0, right, 0, bottom), value=0.0)
    mask = F.pad(mask, (0, right, 0, bottom), value=255)
    top = int(torch.randint(mask.shape[0] - size + 1, (1,), generator=generator))
    left = int(torch.randint(mask.shape[1] - size + 1, (1,), generator=generator))
    return image[:, top : top + size, left : left + size], mask[top : top + size, left : left + size]


def test_random_crop():
    expect(checks.check_random_crop(random_crop), True, "all 15 positions")


def test_random_crop_mistakes():
    def never_the_last_position(image, mask, size, generator):
        top = int(torch.randint(max(mask.shape[0] - size, 1), (1,), generator=generator))
        left = int(torch.randint(max(mask.shape[1] - size, 1), (1,), generator=generator))
        return image[:, top : top + size, left : left + size], mask[top : top + size, left : left + size]

    def mask_padded_with_background(image, mask, size, generator):
        bottom, right = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
        return random_crop(F.pad(image, (0, right, 0, bottom)), F.pad(mask, (0, right, 0, bottom)), size, generator)

    def two_windows(image, mask, size, generator):
        return random_crop(image, mask, size, generator)[0], random_crop(image, mask, size, generator)[1]

    def global_generator(image, mask, size, generator):
        return random_crop(image, mask, size, None)

    def no_padding(image, mask, size, generator):
        return image[:, :size, :size], mask[:size, :size]

    expect(checks.check_random_crop(never_the_last_position), False, "exclusive")
    expect(checks.check_random_crop(mask_padded_with_background), False, "VOID (255)")
    expect(checks.check_random_crop(two_windows), False, "draw top and left once")
    expect(checks.check_random_crop(global_generator), False, "generator=generator")
    expect(checks.check_random_crop(no_padding), False)
    expect(checks.check_random_crop(lambda image, mask, size, generator: image), False, "pair")


# --- bilinear kernel ---------------------------------------------------------------------------------


def caffe_bilinear(in_channels, out_channels, kernel_size):
    """An independent reference: fcn.berkeleyvision.org's surgery.upsample_filt, written out with NumPy."""
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    rows, cols = np.ogrid[:kernel_size, :kernel_size]
    tent = (1 - abs(rows - centre) / factor) * (1 - abs(cols - centre) / factor)
    weight = np.zeros((in_channels, out_channels, kernel_size, kernel_size), dtype=np.float32)
    for channel in range(min(in_channels, out_channels)):
        weight[channel, channel] = tent
    return torch.from_numpy(weight)


def test_bilinear_kernel():
    # a correct answer, written independently of the package, passes; so does the package's own
    expect(checks.check_bilinear_kernel(caffe_bilinear), True)
    expect(checks.check_bilinear_kernel(bilinear_kernel), True)
    # and the checker really compares values: the reference's 4 x 4 kernel, by hand
    assert torch.allclose(caffe_bilinear(1, 1, 4)[0, 0, 0], torch.tensor([0.0625, 0.1875, 0.1875, 0.0625]))


def test_bilinear_kernel_mistakes():
    def centre_at_factor_minus_one(i, o, k):
        factor = (k + 1) // 2
        tent = 1 - (torch.arange(k) - (factor - 1)).abs() / factor
        weight = torch.zeros(i, o, k, k)
        for c in range(min(i, o)):
            weight[c, c] = tent[:, None] * tent[None, :]
        return weight

    def every_channel_pair(i, o, k):
        return bilinear_kernel(1, 1, k).expand(i, o, k, k).clone()

    def normalised(i, o, k):
        weight = bilinear_kernel(i, o, k)
        return weight / weight[0, 0].sum()

    expect(checks.check_bilinear_kernel(centre_at_factor_minus_one), False, "even kernel", "factor - 0.5")
    expect(checks.check_bilinear_kernel(every_channel_pair), False, "between different channels")
    expect(checks.check_bilinear_kernel(lambda i, o, k: bilinear_kernel(1, 1, k)[0, 0]), False, "shape")
    expect(checks.check_bilinear_kernel(normalised), False, "scale")


# --- crop offsets ------------------------------------------------------------------------------------


def test_crop_offsets():
    model = build_model("fcn8s", 2, preset="original", width=0.0625)
    expect(checks.check_crop_offsets(lambda h, w: crop_offsets(model, (h, w))), True)
    paper = build_model("fcn8s", 2, preset="paper", width=0.0625)  # the fixed Caffe offsets are wrong here
    expect(checks.check_crop_offsets(lambda h, w: crop_offsets(paper, (h, w))), False, "centre-crop")
    expect(checks.check_crop_offsets(lambda h, w: None), False, "return")


# --- one training step -------------------------------------------------------------------------------


def step(model, optimizer, images, masks):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), masks, ignore_index=255)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_training_step():
    expect(checks.check_training_step(step), True, "loss falls")
    expect(checks.check_training_step(lambda *args: torch.tensor(step(*args))), True)


def test_training_step_mistakes():
    def no_zero_grad(model, optimizer, images, masks):
        loss = F.cross_entropy(model(images), masks, ignore_index=255)
        loss.backward()
        optimizer.step()
        return loss.item()

    def void_not_ignored(model, optimizer, images, masks):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), masks)
        loss.backward()
        optimizer.step()
        return loss.item()

    def void_as_background(model, optimizer, images, masks):
        return step(model, optimizer, images, masks.masked_fill(masks == 255, 0))

    def no_step(model, optimizer, images, masks):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), masks, ignore_index=255)
        loss.backward()
        return loss.item()

    expect(checks.check_training_step(no_zero_grad), False, "zero_grad")
    expect(checks.check_training_step(void_not_ignored), False, "ignore_index=255")
    expect(checks.check_training_step(void_as_background), False, "non-void")
    expect(checks.check_training_step(no_step), False, "optimizer.step()")


# --- answers in other styles and mistakes found by an audit of the checkers (2026-11-25) ----------------


def test_numpy_and_tensor_answers_count_as_numbers():
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: np.floor_divide(s + 2 * p - k, st) + 1), True)
    expect(checks.check_upsampled_size(lambda s, k, st, p=0: np.int64((s - 1) * st - 2 * p + k)), True)
    kernel = lambda f: 2 * f - f % 2  # noqa: E731
    expect(checks.check_exact_upsampling(lambda f: np.array([kernel(f), f, (kernel(f) - f) // 2])), True)
    expect(checks.check_exact_upsampling(lambda f: tuple(torch.tensor([kernel(f), f, (kernel(f) - f) // 2]))), True)
    model = build_model("fcn8s", 2, preset="original", width=0.0625)

    def as_arrays(h, w):
        return {key: np.array(value) for key, value in crop_offsets(model, (h, w)).items()}

    expect(checks.check_crop_offsets(as_arrays), True)


def test_a_hint_is_named_only_when_it_explains_every_case():
    # forgetting the + 1 equals "padding once" on the first case; the hint must name the + 1
    expect(checks.check_conv_output_size(lambda s, k, st=1, p=0: (s + 2 * p - k) // st), False, "add 1")
    expect(checks.check_exact_upsampling(lambda f: (2 * f + 1 if f % 2 else 2 * f, f, (f + 1) // 2)), False, "odd one")


def test_crop_offsets_are_whole_pixels_in_a_dict():
    model = build_model("fcn8s", 2, preset="original", width=0.0625)

    def halves(h, w):  # `/` instead of `//`: 5.5 must not count as 5
        return {key: tuple(v + 0.5 for v in value) for key, value in crop_offsets(model, (h, w)).items()}

    expect(checks.check_crop_offsets(halves), False, "`//`")
    expect(checks.check_crop_offsets(lambda h, w: (5, 5)), False, "a dict with the keys")


def test_metrics_pass_ignore_index_and_pool_the_batch():
    def hard_coded_void(prediction, target, n_classes, ignore_index=255):
        keep = target != 255
        index = n_classes * target[keep] + prediction[keep]
        return torch.bincount(index, minlength=n_classes**2).reshape(n_classes, n_classes)

    expect(checks.check_confusion_matrix(hard_coded_void), False, "ignore_index=7")

    def mean_of_images(prediction, target, ignore_index=255):
        if prediction.dim() == 1 or prediction.dim() == 2:
            keep = target != ignore_index
            return (prediction[keep] == target[keep]).double().mean().item()
        return float(np.mean([mean_of_images(p, t, ignore_index) for p, t in zip(prediction, target)]))

    expect(checks.check_pixel_accuracy(mean_of_images), False, "pool the non-void pixels")

    def changes_its_input(prediction, target, ignore_index=255):
        keep = target != ignore_index
        target[~keep] = 0  # right answer, but the caller's labels are gone
        return (prediction[keep] == target[keep]).double().mean().item()

    expect(checks.check_pixel_accuracy(changes_its_input), False, "changed a tensor it was given")


def test_polyp_fraction_mistakes_on_void_and_other_classes():
    expect(checks.check_polyp_fraction(lambda m: (m == 1).sum().item() / (m != 255).sum().item()), False, "nan")
    expect(checks.check_polyp_fraction(lambda m: (m[m != 255] > 0).float().mean()), False, "Class 2 is not a polyp")
    expect(checks.check_polyp_fraction(lambda m: (m == 1).sum() // (m != 255).sum()), False, "Integer division")


def test_random_crop_checks_dtypes_one_sided_small_frames_and_the_generator():
    def float_mask(image, mask, size, generator):
        image_crop, mask_crop = random_crop(image, mask, size, generator)
        return image_crop, mask_crop.float()

    def unguarded_padding(image, mask, size, generator):  # a negative pad cuts the long side
        if mask.shape[0] < size or mask.shape[1] < size:
            bottom, right = size - mask.shape[0], size - mask.shape[1]
            image, mask = F.pad(image, (0, right, 0, bottom)), F.pad(mask, (0, right, 0, bottom), value=255)
        return random_crop(image, mask, size, generator)

    def python_random(image, mask, size, generator):  # ignores the generator: two seeds agree by chance at times
        import random

        top, left = random.randint(0, mask.shape[0] - size), random.randint(0, mask.shape[1] - size)
        return image[:, top : top + size, left : left + size], mask[top : top + size, left : left + size]

    def height_for_both(image, mask, size, generator):
        bottom, right = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
        image, mask = F.pad(image, (0, right, 0, bottom)), F.pad(mask, (0, right, 0, bottom), value=255)
        top = int(torch.randint(mask.shape[0] - size + 1, (1,), generator=generator))
        left = int(torch.randint(min(mask.shape) - size + 1, (1,), generator=generator))
        return image[:, top : top + size, left : left + size], mask[top : top + size, left : left + size]

    def no_padding(image, mask, size, generator):
        top = int(torch.randint(mask.shape[0] - size + 1, (1,), generator=generator))
        left = int(torch.randint(mask.shape[1] - size + 1, (1,), generator=generator))
        return image[:, top : top + size, left : left + size], mask[top : top + size, left : left + size]

    expect(checks.check_random_crop(float_mask), False, "torch.int64")
    expect(checks.check_random_crop(unguarded_padding), False, "5 x 12")
    for _ in range(20):
        expect(checks.check_random_crop(python_random), False, "generator=generator")
    expect(checks.check_random_crop(height_for_both), False, "left took the values [0, 1, 2]")
    expect(checks.check_random_crop(no_padding), False, "must be padded first")


def test_bilinear_kernel_with_different_channel_counts():
    def diagonal_of_in_channels(in_channels, out_channels, kernel_size):
        weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
        for channel in range(in_channels):
            weight[channel, channel] = bilinear_kernel(1, 1, kernel_size)[0, 0]
        return weight

    expect(checks.check_bilinear_kernel(diagonal_of_in_channels), False, "min(in_channels, out_channels)")
    expect(checks.check_bilinear_kernel(lambda i, o, k: bilinear_kernel(o, i, k)), False, "has shape (5, 3, 4, 4)")


def test_training_step_may_zero_the_gradients_after_the_step():
    def zero_at_the_end(model, optimizer, images, masks):
        loss = F.cross_entropy(model(images), masks, ignore_index=255)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    expect(checks.check_training_step(zero_at_the_end), True, "two steps match")
