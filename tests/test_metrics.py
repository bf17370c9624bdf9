"""fcn_tutorial.metrics: hand-computed scores, agreement with torchmetrics, bad input, distributed sums."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics.classification import MulticlassJaccardIndex

from fcn_tutorial import metrics
from fcn_tutorial.metrics import (
    ConfusionMatrix,
    PerImageJaccard,
    SegmentationScores,
    confusion_matrix,
    jaccard_index,
    pixel_accuracy,
    scores_from_confusion,
)

VOID = 255

# A 3 x 4 image with 3 classes and 2 void pixels, and a prediction for it.
TARGET = torch.tensor(
    [
        [0, 0, 1, 1],
        [0, 2, 2, 1],
        [VOID, 2, 2, VOID],
    ]
)
PREDICTION = torch.tensor(
    [
        [0, 1, 1, 1],
        [0, 2, 1, 1],
        [2, 2, 2, 0],
    ]
)
# Counted by hand, rows = truth, columns = prediction (the two void pixels are left out):
#   truth 0 at (0,0) (0,1) (1,0) -> predicted 0, 1, 0
#   truth 1 at (0,2) (0,3) (1,3) -> predicted 1, 1, 1
#   truth 2 at (1,1) (1,2) (2,1) (2,2) -> predicted 2, 1, 2, 2
HAND_CONFUSION = torch.tensor(
    [
        [2, 1, 0],
        [0, 3, 0],
        [0, 1, 3],
    ]
)


def random_case(n_classes: int, shape=(4, 17, 23), void_fraction=0.2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, n_classes, shape, generator=generator)
    target[torch.rand(shape, generator=generator) < void_fraction] = VOID
    prediction = torch.randint(0, n_classes, shape, generator=generator)
    return prediction, target


def one_hot_logits(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Float logits N x C x H x W whose argmax over C is ``labels``, plus noise that keeps the order."""
    logits = torch.nn.functional.one_hot(labels, n_classes).movedim(-1, 1).float() * 5
    return logits + torch.rand_like(logits)


# --- hand-computed -----------------------------------------------------------------------------------


def test_confusion_matrix_matches_the_one_counted_by_hand():
    confusion = confusion_matrix(PREDICTION, TARGET, n_classes=3, ignore_index=VOID)
    assert confusion.dtype == torch.int64
    assert torch.equal(confusion, HAND_CONFUSION)


def test_scores_match_the_hand_computation():
    scores = scores_from_confusion(HAND_CONFUSION)
    assert scores.pixel_accuracy == pytest.approx(8 / 10)
    # Jaccard = TP / (row + column - TP): class 0: 2 / (3 + 2 - 2), class 1: 3 / (3 + 5 - 3), class 2: 3 / (4 + 3 - 3)
    assert scores.jaccard == pytest.approx([2 / 3, 3 / 5, 3 / 4])
    assert scores.mean_jaccard == pytest.approx((2 / 3 + 3 / 5 + 3 / 4) / 3)
    # Dice = 2 TP / (row + column)
    assert scores.dice == pytest.approx([4 / 5, 6 / 8, 6 / 7])
    assert torch.equal(scores.confusion, HAND_CONFUSION)


def test_functional_forms_agree_with_the_class():
    metric = ConfusionMatrix(n_classes=3, ignore_index=VOID)
    metric.update(PREDICTION, TARGET)
    scores = metric.compute()
    assert pixel_accuracy(PREDICTION, TARGET, 3, ignore_index=VOID) == scores.pixel_accuracy
    assert jaccard_index(PREDICTION, TARGET, 3, ignore_index=VOID) == scores.jaccard


def test_without_ignore_index_every_value_must_be_a_class():
    with pytest.raises(ValueError, match=r"target has labels \[255\] outside \[0, 3\)"):
        confusion_matrix(PREDICTION, TARGET, n_classes=3)
    clean = TARGET.clamp(max=2)
    assert confusion_matrix(PREDICTION, clean, n_classes=3).sum() == 12


def test_module_docstring_example_runs():
    result = doctest.testmod(metrics)
    assert result.attempted >= 8 and result.failed == 0


# --- agreement with torchmetrics ---------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3, 5, 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jaccard_agrees_with_torchmetrics_on_present_classes(n_classes, seed):
    prediction, target = random_case(n_classes, seed=seed)
    if seed == 2:  # make one class absent from truth and prediction alike
        prediction[prediction == 1] = 0
        target[target == 1] = 0
    reference = MulticlassJaccardIndex(num_classes=n_classes, average="none", ignore_index=VOID)
    ours = torch.tensor(jaccard_index(prediction, target, n_classes, ignore_index=VOID), dtype=torch.float64)
    theirs = reference(prediction, target).double()
    present = ~ours.isnan()
    assert present.sum() >= n_classes - 1
    assert torch.allclose(ours[present], theirs[present], atol=1e-6)
    if seed == 2:
        assert ours[1].isnan()  # torchmetrics reports 0 here; we say "not defined"


def test_pixel_accuracy_counts_only_non_void_pixels():
    prediction, target = random_case(4, seed=3)
    counted = target != VOID
    expected = (prediction[counted] == target[counted]).double().mean().item()
    assert pixel_accuracy(prediction, target, 4, ignore_index=VOID) == pytest.approx(expected)


# --- special cases -----------------------------------------------------------------------------------


def test_all_pixels_ignored_gives_an_empty_matrix_and_nan_scores():
    target = torch.full((2, 5, 6), VOID)
    prediction = torch.randint(0, 2, (2, 5, 6))
    scores = scores_from_confusion(confusion_matrix(prediction, target, 2, ignore_index=VOID))
    assert scores.confusion.sum() == 0
    assert math.isnan(scores.pixel_accuracy) and math.isnan(scores.mean_jaccard)
    assert all(math.isnan(value) for value in scores.jaccard + scores.dice)


def test_perfect_prediction_scores_one():
    _, target = random_case(3, seed=4)
    prediction = target.clone()
    prediction[target == VOID] = 0  # whatever the model says on void pixels does not count
    scores = scores_from_confusion(confusion_matrix(prediction, target, 3, ignore_index=VOID))
    assert scores.pixel_accuracy == 1.0 and scores.mean_jaccard == 1.0
    assert scores.jaccard == [1.0, 1.0, 1.0] and scores.dice == [1.0, 1.0, 1.0]


def test_absent_class_is_nan_and_left_out_of_the_mean():
    target = torch.tensor([[0, 0, 1, 1]])
    prediction = torch.tensor([[0, 1, 1, 1]])
    scores = scores_from_confusion(confusion_matrix(prediction, target, n_classes=3))
    assert scores.jaccard[:2] == pytest.approx([1 / 2, 2 / 3])
    assert math.isnan(scores.jaccard[2]) and math.isnan(scores.dice[2])
    assert scores.mean_jaccard == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_class_predicted_but_absent_from_truth_scores_zero_not_nan():
    target = torch.tensor([[0, 0, 0, 0]])
    prediction = torch.tensor([[0, 0, 0, 1]])
    scores = scores_from_confusion(confusion_matrix(prediction, target, n_classes=2))
    assert scores.jaccard == pytest.approx([3 / 4, 0.0])
    assert scores.mean_jaccard == pytest.approx(3 / 8)


def test_logits_and_their_labels_give_the_same_matrix():
    labels, target = random_case(3, seed=5)
    logits = one_hot_logits(labels, 3)
    assert torch.equal(labels, logits.argmax(dim=1))
    assert torch.equal(confusion_matrix(logits, target, 3, VOID), confusion_matrix(labels, target, 3, VOID))
    # One unbatched image: C x H x W logits with an H x W mask.
    assert torch.equal(confusion_matrix(logits[0], target[0], 3, VOID), confusion_matrix(labels[0], target[0], 3, VOID))


@pytest.mark.parametrize("seed", [0, 1])
def test_dice_is_2j_over_1_plus_j(seed):
    scores = scores_from_confusion(confusion_matrix(*random_case(4, seed=seed), 4, ignore_index=VOID))
    for jaccard, dice in zip(scores.jaccard, scores.dice):
        assert dice == pytest.approx(2 * jaccard / (1 + jaccard))


def test_small_integer_dtypes_and_many_classes():
    prediction, target = random_case(20, seed=6)
    expected = confusion_matrix(prediction, target, 20, VOID)
    assert torch.equal(confusion_matrix(prediction.to(torch.uint8), target.to(torch.uint8), 20, VOID), expected)
    assert torch.equal(confusion_matrix(prediction.int(), target.short(), 20, VOID), expected)
    assert expected.sum() == (target != VOID).sum()


def test_scores_are_a_frozen_dataclass_with_a_flat_dict():
    scores = scores_from_confusion(HAND_CONFUSION)
    assert isinstance(scores, SegmentationScores)
    with pytest.raises(dataclasses.FrozenInstanceError):
        scores.mean_jaccard = 1.0
    row = scores.as_dict()
    assert list(row) == [
        "pixel_accuracy",
        "mean_jaccard",
        "jaccard_class_0",
        "jaccard_class_1",
        "jaccard_class_2",
        "dice_class_0",
        "dice_class_1",
        "dice_class_2",
    ]
    assert row["jaccard_class_1"] == pytest.approx(3 / 5)
    assert json.loads(json.dumps(row)) == row


# --- accumulating, merging, resetting ------------------------------------------------------------------


def test_accumulating_batches_equals_one_matrix_over_their_concatenation():
    (p1, t1), (p2, t2) = random_case(3, seed=7), random_case(3, seed=8)
    whole = confusion_matrix(torch.cat([p1, p2]), torch.cat([t1, t2]), 3, VOID)

    metric = ConfusionMatrix(3, ignore_index=VOID)
    metric.update(p1, t1)
    metric.update(p2, t2)
    assert torch.equal(metric.confusion, whole)

    first, second = ConfusionMatrix(3, ignore_index=VOID), ConfusionMatrix(3, ignore_index=VOID)
    first.update(p1, t1)
    second.update(p2, t2)
    total = first + second
    assert torch.equal(total.confusion, whole)
    assert torch.equal(first.confusion, confusion_matrix(p1, t1, 3, VOID))  # + leaves both untouched
    assert first.merge(second) is first and torch.equal(first.confusion, whole)


def test_merge_refuses_a_different_metric():
    with pytest.raises(ValueError, match="n_classes=3.*n_classes=2"):
        ConfusionMatrix(2) + ConfusionMatrix(3)
    with pytest.raises(ValueError, match="ignore_index=255"):
        ConfusionMatrix(2).merge(ConfusionMatrix(2, ignore_index=VOID))


def test_reset_and_empty_metric():
    metric = ConfusionMatrix(2, ignore_index=VOID)
    assert math.isnan(metric.compute().mean_jaccard)
    metric.update(*random_case(2, seed=9))
    assert metric.confusion.sum() > 0
    metric.reset()
    assert metric.confusion.sum() == 0
    metric.reduce_from_all_processes()  # no process group: nothing happens
    assert metric.confusion.sum() == 0


# --- bad input ---------------------------------------------------------------------------------------


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"prediction shape \(2, 4, 5\) does not match target shape \(2, 4, 6\)"):
        confusion_matrix(torch.zeros(2, 4, 5, dtype=torch.long), torch.zeros(2, 4, 6, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"logits of shape \(2, 2, 4, 5\) .* target shape \(4, 5\)"):
        confusion_matrix(torch.zeros(2, 2, 4, 5), torch.zeros(4, 5, dtype=torch.long), 2)


def test_labels_outside_the_classes_are_named():
    target = torch.tensor([[0, 1, 7, VOID], [3, -1, 1, 0]])
    with pytest.raises(ValueError, match=r"target has labels \[-1, 3, 7\] outside \[0, 2\) or ignore_index=255"):
        confusion_matrix(torch.zeros_like(target), target, 2, ignore_index=VOID)
    with pytest.raises(ValueError, match=r"prediction has labels \[2\] outside \[0, 2\)"):
        confusion_matrix(torch.tensor([[0, 2]]), torch.tensor([[0, 1]]), 2)
    # A label only found under void pixels is fine: the model may say anything there.
    assert confusion_matrix(torch.tensor([[0, 9]]), torch.tensor([[0, VOID]]), 2, VOID).sum() == 1


@pytest.mark.parametrize(
    "prediction, target, message",
    [
        (torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 3), "target must be an integer tensor.*float32"),
        (torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 3, dtype=torch.bool), "target .*torch.bool"),
        (torch.zeros(3, 3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.long), "prediction .*torch.bool"),
        (torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), "logits have 3 channels .* n_classes is 2"),
    ],
)
def test_wrong_dtypes_and_channels_are_explained(prediction, target, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(prediction, target, 2)
    with pytest.raises(ValueError, match=message):
        ConfusionMatrix(2).update(prediction, target)


def test_bad_n_classes():
    with pytest.raises(ValueError, match="n_classes must be at least 1"):
        ConfusionMatrix(0)


@pytest.mark.parametrize("n_classes", [2.5, 2.0, "2", True, None, [2]])
def test_n_classes_that_is_not_a_whole_number_is_a_type_error(n_classes):
    for make in (ConfusionMatrix, PerImageJaccard, lambda n: confusion_matrix(PREDICTION, TARGET, n, VOID)):
        with pytest.raises(TypeError, match=r"n_classes must be a whole number, got .*\("):
            make(n_classes)


@pytest.mark.parametrize("n_classes", [0, -1, metrics.MAX_CLASSES + 1, 10**12])
def test_n_classes_out_of_range_is_a_value_error(n_classes):
    for make in (ConfusionMatrix, PerImageJaccard, lambda n: jaccard_index(PREDICTION, TARGET, n, VOID)):
        with pytest.raises(ValueError, match=f"n_classes must be at least 1 and at most 4096, got {n_classes}"):
            make(n_classes)


@pytest.mark.parametrize("ignore_index", [2.5, "255", True, [255]])
def test_ignore_index_that_is_not_a_whole_number_is_a_type_error(ignore_index):
    with pytest.raises(TypeError, match="ignore_index must be a whole number or None"):
        ConfusionMatrix(3, ignore_index=ignore_index)
    with pytest.raises(TypeError, match="ignore_index must be a whole number or None"):
        pixel_accuracy(PREDICTION, TARGET, 3, ignore_index)


def test_numpy_integers_are_whole_numbers():
    metric = ConfusionMatrix(np.int64(3), ignore_index=np.uint8(VOID))
    metric.update(PREDICTION, TARGET)
    assert torch.equal(metric.confusion, HAND_CONFUSION) and type(metric.n_classes) is int


# --- NaN and infinite logits, array-likes (issue #9) -------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("channel", [0, 1])
def test_non_finite_logits_raise_instead_of_counting_as_a_class(bad, channel):
    logits = one_hot_logits(TARGET.clamp(max=2)[None], 3)
    logits[0, channel, 1, 2] = bad
    target = TARGET[None]
    message = r"logits are NaN or infinite at 1 of 12 pixels: .*diverged"
    with pytest.raises(ValueError, match=message):
        confusion_matrix(logits, target, 3, VOID)
    metric, per_image = ConfusionMatrix(3, VOID), PerImageJaccard(3, VOID)
    for update in (metric.update, per_image.update):
        with pytest.raises(ValueError, match=message):
            update(logits, target)
    assert metric.confusion.sum() == 0 and len(per_image) == 0  # nothing was counted


def test_all_nan_logits_are_not_class_0():
    """The case of issue #9: a diverged model's NaN output used to score as 'all background'."""
    logits = torch.full((1, 2, 4, 4), math.nan)
    with pytest.raises(ValueError, match="NaN or infinite at 16 of 16 pixels"):
        ConfusionMatrix(2).update(logits, torch.zeros(1, 4, 4, dtype=torch.long))


def test_lists_and_numpy_arrays_are_accepted():
    expected = confusion_matrix(PREDICTION, TARGET, 3, VOID)
    for prediction, target in [
        (PREDICTION.tolist(), TARGET.tolist()),
        (PREDICTION.numpy(), TARGET.numpy()),
        (PREDICTION, TARGET.numpy().astype(np.uint16)),
        (PREDICTION.numpy(), TARGET),
        (tuple(PREDICTION.tolist()), TARGET.numpy().astype(np.int32)),
    ]:
        assert torch.equal(confusion_matrix(prediction, target, 3, VOID), expected)
        metric = ConfusionMatrix(3, VOID)
        metric.update(prediction, target)
        assert torch.equal(metric.confusion, expected)
    logits = one_hot_logits(TARGET.clamp(max=2)[None], 3)
    labels = logits.argmax(1)
    assert torch.equal(
        confusion_matrix(logits.numpy(), TARGET[None].numpy(), 3, VOID), confusion_matrix(labels, TARGET[None], 3, VOID)
    )
    assert PerImageJaccard(3, VOID).mean().shape == (3,)
    per_image = PerImageJaccard(3, VOID)
    per_image.update(PREDICTION.numpy(), TARGET.tolist())
    assert per_image.values.shape == (1, 3)


@pytest.mark.parametrize("bad", ["abc", None, {"a": 1}, object(), 3])
def test_other_inputs_are_a_type_error(bad):
    with pytest.raises(TypeError, match="prediction must be a tensor, a NumPy array or a nested list, not"):
        confusion_matrix(bad, TARGET, 3)
    with pytest.raises(TypeError, match="target must be a tensor, a NumPy array or a nested list, not"):
        ConfusionMatrix(3).update(PREDICTION, bad)


def test_lists_of_strings_and_ragged_lists():
    with pytest.raises(TypeError, match="target must hold numbers, not <U1 values"):
        confusion_matrix([[0, 1]], [["a", "b"]], 2)
    with pytest.raises(ValueError, match="prediction is not a rectangular array"):
        confusion_matrix([[0, 1], [1]], [[0, 1], [1, 0]], 2)


# --- per image ---------------------------------------------------------------------------------------


def test_per_image_jaccard_matches_one_matrix_per_image():
    prediction, target = random_case(3, shape=(5, 9, 11), seed=10)
    prediction[2][prediction[2] == 2] = 0
    target[2][target[2] == 2] = 0  # class 2 absent from image 2
    per_image = PerImageJaccard(3, ignore_index=VOID)
    per_image.update(prediction[:3], target[:3])
    per_image.update(one_hot_logits(prediction[3:], 3), target[3:])  # logits work too
    values = per_image.values
    assert values.shape == (5, 3) and values.dtype == torch.float64 and len(per_image) == 5
    for image in range(5):
        expected = jaccard_index(prediction[image], target[image], 3, ignore_index=VOID)
        assert torch.allclose(values[image], torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    assert values[2, 2].isnan() and values[~values.isnan()].numel() == 14
    assert torch.allclose(per_image.compute(), values, equal_nan=True)
    assert per_image.mean()[2] == pytest.approx(values[[0, 1, 3, 4], 2].mean().item())


def test_per_image_mean_and_scores_dict_against_hand_computed_values():
    """Three 2 x 2 images, counted by hand (void left out); a class absent from an image is left out of its mean."""
    targets = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [0, 0]], [[1, 1], [VOID, 0]]])
    predictions = torch.tensor([[[0, 1], [1, 0]], [[0, 0], [0, 0]], [[1, 0], [1, 0]]])
    # image 0: class 0 TP 1, FP 1 -> 1/2; class 1 TP 2, FN 1 -> 2/3
    # image 1: class 0 everywhere -> 1; class 1 in neither truth nor prediction -> NaN, left out
    # image 2 (one void pixel): class 0 TP 1, FP 1 -> 1/2; class 1 TP 1, FN 1 -> 1/2
    per_image = PerImageJaccard(2, ignore_index=VOID)
    per_image.update(predictions[:1], targets[:1])
    per_image.update(predictions[1], targets[1])  # one H x W image
    per_image.update(predictions[2:], targets[2:])
    assert per_image.values[:, 0].tolist() == [0.5, 1.0, 0.5]
    assert per_image.values[0, 1].item() == pytest.approx(2 / 3) and math.isnan(per_image.values[1, 1].item())
    assert per_image.values[2, 1].item() == 0.5
    assert per_image.mean().tolist() == [pytest.approx(2 / 3), pytest.approx(7 / 12)]  # (1/2+1+1/2)/3, (2/3+1/2)/2

    from fcn_tutorial.scoring import scores_dict

    confusion = ConfusionMatrix(2, ignore_index=VOID)
    confusion.update(predictions, targets)
    result = scores_dict(0.25, confusion.compute(), per_image)
    assert result["per_image_jaccard"] == [pytest.approx(2 / 3), pytest.approx(7 / 12)]
    assert result["per_image_mean_jaccard"] == pytest.approx(5 / 8)  # (2/3 + 7/12) / 2
    # the whole split's matrix (11 pixels): truth 0 -> predicted 0 six times; truth 1 -> 1 three times, -> 0 twice
    assert result["jaccard"] == [pytest.approx(6 / 8), pytest.approx(3 / 5)] and result["pixel_accuracy"] == 9 / 11


def test_per_image_jaccard_takes_single_images_and_resets():
    per_image = PerImageJaccard(2)
    assert per_image.values.shape == (0, 2)
    per_image.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]))
    assert per_image.values.tolist() == [[pytest.approx(1 / 2), pytest.approx(2 / 3)]]
    per_image.reset()
    assert len(per_image) == 0
    with pytest.raises(ValueError, match=r"N x H x W or H x W masks, got shape \(1, 2, 2, 2\)"):
        per_image.update(torch.zeros(1, 2, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, 2, dtype=torch.long))


# --- distributed -------------------------------------------------------------------------------------


def _reduce_on_rank(rank: int, world_size: int, init_method: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    try:
        metric = ConfusionMatrix(3, ignore_index=VOID)
        metric.update(*random_case(3, seed=100 + rank))
        metric.reduce_from_all_processes()
        torch.save(metric.confusion, f"{results}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_reduce_from_all_processes_sums_the_matrices(tmp_path):
    mp.spawn(_reduce_on_rank, args=(2, f"file://{tmp_path}/store", str(tmp_path)), nprocs=2)
    expected = sum(confusion_matrix(*random_case(3, seed=100 + rank), 3, VOID) for rank in range(2))
    for rank in range(2):
        assert torch.equal(torch.load(tmp_path / f"rank{rank}.pt"), expected)


# --- real masks --------------------------------------------------------------------------------------


def test_real_kvasir_masks_agree_with_torchmetrics(kvasir_root):
    """Real polyp masks (JPEG, thresholded at 128) against the same masks shifted by 12 pixels."""
    import numpy as np
    from PIL import Image

    per_image = PerImageJaccard(2)
    ours = ConfusionMatrix(2)
    reference = MulticlassJaccardIndex(num_classes=2, average="none")
    for path in sorted((kvasir_root / "masks").glob("*.jpg"))[:4]:
        mask = torch.from_numpy(np.array(Image.open(path).convert("L")) >= 128).long()
        shifted = torch.roll(mask, shifts=12, dims=1)
        ours.update(shifted, mask)
        per_image.update(shifted, mask)
        reference.update(shifted, mask)
    scores = ours.compute()
    assert torch.allclose(torch.tensor(scores.jaccard, dtype=torch.float64), reference.compute().double(), atol=1e-6)
    assert 0.5 < scores.jaccard[1] < 1.0  # a 12-pixel shift overlaps most of each polyp
    assert per_image.values.shape == (4, 2) and not per_image.values.isnan().any()
