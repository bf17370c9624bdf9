"""The decision threshold: ``decide``, ``ThresholdSweep`` against direct counting, and the commands that use it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_tutorial import cli
from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.data import VOID, make_synthetic_polyps
from fcn_tutorial.evaluate import evaluate_checkpoint
from fcn_tutorial.metrics import ConfusionMatrix, PerImageJaccard
from fcn_tutorial.run import train
from fcn_tutorial.scoring import check_threshold, decide
from fcn_tutorial.threshold import THRESHOLDS, ThresholdSweep, sweep_checkpoint

from tiny import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from hard_frames import extent, hard_frames  # noqa: E402
from postprocess import polyp_jaccard  # noqa: E402
from threshold_twofold import twofold  # noqa: E402


def random_frames(n=5, height=9, width=11, seed=0):
    """Logits whose polyp probabilities spread over (0, 1), and masks with some void pixels."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 2, height, width, generator=generator) * 2
    masks = torch.randint(0, 2, (n, height, width), generator=generator)
    masks[torch.rand(n, height, width, generator=generator) < 0.1] = VOID
    return logits, masks


def test_decide_is_argmax_without_a_threshold_and_the_probability_rule_with_one():
    logits, _ = random_frames()
    assert torch.equal(decide(logits), logits.argmax(dim=1))
    probability = logits.softmax(dim=1)[:, 1]
    for threshold in (0.2, 0.5, 0.8):
        assert torch.equal(decide(logits, threshold), (probability > threshold).long())
    assert torch.equal(decide(logits, 0.5), logits.argmax(dim=1))  # no ties in random logits
    lower, higher = decide(logits, 0.3), decide(logits, 0.7)
    assert bool((higher <= lower).all()) and lower.sum() > higher.sum()  # a lower threshold draws larger polyps


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5, True])
def test_a_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check_threshold(threshold, 2)


def test_a_threshold_needs_two_classes():
    with pytest.raises(ValueError, match="two-class network"):
        decide(torch.zeros(3, 4, 4), 0.5)
    with pytest.raises(ValueError, match="not 3 classes"):
        check_threshold(0.3, 3)  # what evaluate_checkpoint, predict_files and sweep_checkpoint check first
    assert decide(torch.zeros(3, 4, 4)).shape == (4, 4)  # argmax works for any number of classes


def test_the_sweep_equals_counting_at_each_threshold():
    logits, masks = random_frames()
    sweep = ThresholdSweep()
    sweep.update(logits[:2], masks[:2])  # a batch ...
    for frame_logits, mask in zip(logits[2:], masks[2:]):  # ... then single frames
        sweep.update(frame_logits, mask)
    confusions = sweep.confusions()
    whole, per_image = sweep.jaccard(), sweep.per_image_jaccard()
    assert len(whole) == len(per_image) == len(THRESHOLDS) == 19
    for k, threshold in enumerate(THRESHOLDS):
        direct, direct_per_image = ConfusionMatrix(2, ignore_index=VOID), PerImageJaccard(2, ignore_index=VOID)
        labels = decide(logits, threshold)
        direct.update(labels, masks)
        direct_per_image.update(labels, masks)
        assert torch.equal(confusions[k], direct.confusion), threshold
        assert whole[k] == pytest.approx(direct.compute().jaccard[1], abs=1e-12)
        assert per_image[k] == pytest.approx(float(direct_per_image.mean()[1]), abs=1e-12)
    assert int(confusions[0].sum()) == int((masks != VOID).sum())  # void never counted


def test_a_subset_of_the_sweep_is_the_sweep_of_those_frames():
    logits, masks = random_frames()
    whole, part = ThresholdSweep(), ThresholdSweep()
    whole.update(logits, masks)
    part.update(logits[1::2], masks[1::2])
    odd = whole.subset(range(1, len(logits), 2))
    assert torch.equal(odd.confusions(per_image=True), part.confusions(per_image=True))
    assert odd.jaccard() == part.jaccard() and odd.best() == part.best()
    even = whole.subset(range(0, len(logits), 2))
    assert torch.equal(even.confusions() + odd.confusions(), whole.confusions())


def test_best_is_the_highest_whole_split_jaccard_and_ties_go_to_the_middle():
    # Polyp pixels at probability 0.33 and background at 0.12: any threshold from 0.15 to 0.3 is perfect.
    probability = torch.tensor([[0.33, 0.33, 0.12, 0.12]])
    logits = torch.stack([torch.zeros(1, 4), (probability / (1 - probability)).log()])
    sweep = ThresholdSweep()
    sweep.update(logits, torch.tensor([[1, 1, 0, 0]]))
    perfect = [t for t, j in zip(sweep.thresholds, sweep.jaccard()) if j == 1.0]
    assert perfect == [0.15, 0.2, 0.25, 0.3]
    assert sweep.best() == 0.3  # of equals, the one closest to argmax's 0.5
    report = sweep.report()
    assert report["best"] == 0.3 and report["images"] == 1 and len(report["jaccard"]) == 19


def test_the_sweep_refuses_bad_input():
    with pytest.raises(ValueError, match="no pixels"):
        ThresholdSweep().best()
    with pytest.raises(ValueError, match="N x 2 x H x W"):
        ThresholdSweep().update(torch.zeros(3, 4, 4), torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN or infinite"):
        ThresholdSweep().update(torch.full((2, 4, 4), float("nan")), torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="0 \\(background\\), 1 \\(polyp\\)"):
        ThresholdSweep().update(torch.zeros(2, 2, 2), torch.full((2, 2), 3))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ThresholdSweep(thresholds=(0.5, 1.0))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run on synthetic frames, its best.pt given random pool3 scores so that both classes appear."""
    root = tmp_path_factory.mktemp("threshold")
    data = make_synthetic_polyps(root / "data", n_train=8, n_valid=4, n_test=4, size=(48, 64), progress=False)
    train(tiny_config(data, root / "run"))
    state = load_checkpoint(root / "run" / "best.pt")
    weight = state["model"]["score_pool3.weight"]
    state["model"]["score_pool3.weight"] = torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)) * 5
    state.pop("ema", None)
    checkpoint = root / "run" / "mixed.pt"
    torch.save(state, checkpoint)
    return checkpoint, data


def test_evaluate_with_a_threshold_scores_what_the_sweep_counted(run):
    checkpoint, data = run
    report = sweep_checkpoint(checkpoint, str(data), "test", tta=True, device="cpu", progress=False)
    jaccards = []
    for threshold in (0.3, 0.5, 0.7):
        scored = evaluate_checkpoint(checkpoint, str(data), "test", tta=True, threshold=threshold, progress=False)
        k = report["thresholds"].index(threshold)
        assert scored["threshold"] == threshold
        assert scored["jaccard"][1] == pytest.approx(report["jaccard"][k], abs=1e-12)
        assert scored["per_image_jaccard"][1] == pytest.approx(report["per_image_jaccard"][k], abs=1e-12)
        jaccards.append(scored["jaccard"][1])
    assert len(set(jaccards)) == 3  # the threshold changes the masks of this network
    argmax = evaluate_checkpoint(checkpoint, str(data), "test", tta=True, progress=False)
    assert "threshold" not in argmax
    assert argmax["loss"] == scored["loss"]  # the loss does not depend on the threshold


def test_threshold_command_and_evaluate_threshold_flag(run, tmp_path, capsys):
    checkpoint, data = run
    plot = tmp_path / "sweep.png"
    assert (
        cli.main(["threshold", str(checkpoint), "--data", str(data), "--json", "--no-progress", "--plot", str(plot)])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert Image.open(plot).size[0] > 300
    assert report["split"] == "val" and report["best"] in THRESHOLDS and report["images"] == 4
    assert cli.main(["threshold", str(checkpoint), "--data", str(data), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "<- best" in table and f"--threshold {report['best']}" in table
    argv = ["evaluate", str(checkpoint), "--data", str(data), "--no-progress", "--threshold"]
    assert cli.main([*argv, str(report["best"])]) == 0
    assert f"polyp above probability {report['best']}" in capsys.readouterr().out
    assert cli.main([*argv, "1.5"]) == 2
    assert "strictly between 0 and 1, got 1.5" in capsys.readouterr().err


def test_threshold_takes_evaluates_input_settings_and_says_them_in_its_evaluate_command(run, capsys):
    checkpoint, data = run
    sweep = sweep_checkpoint(
        checkpoint, str(data), "all", resize="full", amp="bf16", channels_last=True, progress=False
    )
    assert sweep["images"] == 16  # every pair of the folder: 8 + 4 + 4
    for threshold in (0.3, 0.7):  # the sweep counts what evaluate with the same settings scores
        scored = evaluate_checkpoint(
            checkpoint, str(data), "all", resize="full", amp="bf16", channels_last=True, threshold=threshold,
            progress=False,
        )  # fmt: skip
        k = sweep["thresholds"].index(threshold)
        assert scored["jaccard"][1] == pytest.approx(sweep["jaccard"][k], abs=1e-12)
    at_train_size = sweep_checkpoint(checkpoint, str(data), "all", progress=False)
    assert at_train_size["jaccard"] != sweep["jaccard"]  # the input size is part of what the threshold is for
    argv = ["threshold", str(checkpoint), "--data", str(data), "--resize", "full", "--amp", "bf16", "--tta"]
    assert cli.main([*argv, "--channels-last", "--no-progress"]) == 0
    command = capsys.readouterr().out.splitlines()[-1]
    assert f"--data {data} --resize full --amp bf16 --channels-last --tta --threshold" in command
    assert cli.main([*argv[:4], "--resize", "0", "--no-progress"]) == 2
    assert "--resize must be 'train', 'full' or a positive number of pixels, got '0'" in capsys.readouterr().err


def test_predict_with_a_lower_threshold_draws_larger_polyps(run, tmp_path, capsys):
    checkpoint, data = run
    images = sorted((Path(data) / "test" / "images").iterdir())[:2]
    polyp = {}
    for threshold in ("0.2", "0.8"):
        out = tmp_path / threshold
        argv = ["predict", str(checkpoint), *map(str, images), "--out", str(out), "--amp", "none"]
        assert cli.main([*argv, "--threshold", threshold, "--no-progress"]) == 0
        polyp[threshold] = [np.asarray(Image.open(path)) > 0 for path in sorted(out.glob("*_mask.png"))]
    capsys.readouterr()
    for low, high in zip(polyp["0.2"], polyp["0.8"]):
        assert (high <= low).all()
    assert sum(m.sum() for m in polyp["0.2"]) > sum(m.sum() for m in polyp["0.8"])


def test_the_twofold_benchmark_chooses_on_one_half_and_scores_the_other(run):
    checkpoint, _ = run
    result = twofold(str(checkpoint))
    assert len(result["thresholds"]) == 2 and set(result["thresholds"]) <= set(THRESHOLDS)
    assert 0.0 <= result["jaccard"] <= 1.0 and 0.0 <= result["per_image_jaccard"] <= 1.0
    whole = sweep_checkpoint(checkpoint, None, "val", tta=True, device="cpu", progress=False)
    if result["thresholds"][0] == result["thresholds"][1]:  # one threshold for both halves: the whole split's score
        k = whole["thresholds"].index(result["thresholds"][0])
        assert result["jaccard"] == pytest.approx(whole["jaccard"][k], abs=1e-12)


def test_hard_frames_scores_each_network_as_evaluate_does_and_an_ensemble_of_one_is_itself(run):
    checkpoint, data = run
    report = hard_frames([(str(checkpoint), 0.3), (str(checkpoint), 0.3)], "test", progress=False)
    scored = evaluate_checkpoint(checkpoint, str(data), "test", tta=True, threshold=0.3, progress=False)
    for network in report["networks"]:
        assert network["jaccard"] == pytest.approx(scored["jaccard"][1], abs=1e-9)
        assert network["per_image"] == pytest.approx(scored["per_image_jaccard"][1], abs=1e-9)
    assert report["ensemble"]["jaccard"] == pytest.approx(scored["jaccard"][1], abs=1e-9)
    assert report["frames"] == 4 and report["best_per_frame"] == pytest.approx(report["networks"][0]["per_image"])
    for every, some in report["below"].values():
        assert every == some  # two copies of one network fail on the same frames
    assert len(report["hard"]) == report["below"][0.5][0]
    for hard in report["hard"]:
        assert hard["jaccard"][0] == hard["jaccard"][1] < 0.5 and hard["area_ratio"][0] == hard["area_ratio"][1]


def test_extent_says_how_large_and_where_the_polyp_was_drawn():
    mask = torch.tensor([[0, 1, 1, 255], [0, 1, 1, 0]])
    assert extent(torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0]]), mask) == (0.25, 1.0)  # inside; void not counted
    assert extent(torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), mask) == (7 / 4, 4 / 7)  # around it
    assert extent(torch.zeros(2, 4, dtype=torch.long), mask) == (0.0, 0.0)  # nothing drawn


def test_postprocess_scores_thresholded_probabilities_as_the_confusion_matrix_does():
    logits, masks = random_frames()
    probabilities = logits.softmax(1)[:, 1]
    frames = [(p.numpy(), m.numpy()) for p, m in zip(probabilities, masks)]
    whole, per_image = ConfusionMatrix(2, ignore_index=VOID), PerImageJaccard(2, ignore_index=VOID)
    for p, m in zip(probabilities, masks):
        whole.update((p > 0.3).long(), m)
        per_image.update((p > 0.3).long(), m)
    assert polyp_jaccard(frames, 0.3) == pytest.approx((float(whole.compute().jaccard[1]), float(per_image.mean()[1])))
    # a clean-up sees the decision and the probabilities; removing every polyp pixel scores 0 everywhere
    assert polyp_jaccard(frames, 0.3, clean=lambda decided, probability: decided & False) == (0.0, 0.0)
