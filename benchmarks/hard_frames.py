"""Which frames hold the per-image mean down, and would averaging several trained networks lift it?

Issue 10 asks for a per-image mean polyp Jaccard of 0.80 on the test split; single 30-minute CPU runs reach
0.78 to 0.79. This script takes several checkpoints, each with the decision threshold chosen for it on the
validation split, scores every frame of a split with each (flip TTA, full-size masks, as
``fcn-tutorial evaluate --tta --threshold`` does) and reports:

* each network's whole-split and per-image polyp Jaccard (the figures of its ``quality.py`` JSON);
* how many frames score below 0.3 and 0.5 in *every* network, and in at least one: frames that every
  network gets wrong are hard in the data, not unlucky in a seed;
* for each frame below 0.5 in every network, how each network drew it: the predicted polyp's area as a
  multiple of the true one, and the share of it that lies on the polyp (too small and inside it, too large
  around it, or beside it);
* the ensemble: the networks' polyp probabilities averaged, at their mean threshold (it costs the training
  time of all of them, so it is an upper bound on what more training of this kind can give, not a recipe);
* the best network per frame, chosen by looking at the truth: a bound no real method reaches.

    FCN_TUTORIAL_DATA=../shared/data python benchmarks/hard_frames.py --split test \\
        runs/q-s0/best.pt:0.25 runs/q-s1/best.pt:0.30 runs/q-s2/best.pt:0.25
"""

from __future__ import annotations

import argparse

import torch

from fcn_tutorial.data import VOID, registry
from fcn_tutorial.evaluate import load_model
from fcn_tutorial.metrics import ConfusionMatrix, PerImageJaccard
from fcn_tutorial.progress import progress_bar
from fcn_tutorial.scoring import decide, predict_logits


def checkpoint_and_threshold(text: str) -> tuple[str, float]:
    path, _, threshold = text.rpartition(":")
    if not path:
        raise argparse.ArgumentTypeError(f"expected CHECKPOINT:THRESHOLD, e.g. runs/q-s0/best.pt:0.25, got {text!r}")
    return path, float(threshold)


def polyp_scores(predicted: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[float, torch.Tensor]:
    """Whole-split polyp Jaccard and each frame's polyp Jaccard of the ``predicted`` label maps."""
    whole, per_image = ConfusionMatrix(2, ignore_index=VOID), PerImageJaccard(2, ignore_index=VOID)
    for labels, mask in zip(predicted, masks):
        whole.update(labels, mask)
        per_image.update(labels, mask)
    return float(whole.compute().jaccard[1]), per_image.values[:, 1]


def extent(predicted: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """The predicted polyp's area over the true polyp's, and the share of it on the polyp (void ignored)."""
    counted = mask != VOID
    drawn, polyp = (predicted == 1) & counted, mask == 1
    area = int(drawn.sum())
    return area / max(int(polyp.sum()), 1), int((drawn & polyp).sum()) / max(area, 1)


def hard_frames(runs: list[tuple[str, float]], split: str = "test", progress: bool | None = None) -> dict:
    """The figures above, for ``runs`` (checkpoint, threshold) on ``split``, as a dictionary."""
    masks, summed, networks, per_frame, extents = [], None, [], [], []
    for path, threshold in runs:
        model, config = load_model(path, "cpu")
        model.eval()
        dataset = registry.get_dataset(config.data, split, n_classes=config.n_classes)
        logits, masks = [], []
        for index in progress_bar(range(len(dataset)), progress=progress, desc=str(path), leave=False):
            image, mask = dataset[index]
            with torch.no_grad():
                logits.append(
                    predict_logits(model, [image], size=config.resize, normalize=config.normalize, tta=True)[0]
                )
            masks.append(mask.as_subclass(torch.Tensor))
        predicted = [decide(frame_logits, threshold) for frame_logits in logits]
        whole, frames = polyp_scores(predicted, masks)
        extents.append([extent(labels, mask) for labels, mask in zip(predicted, masks)])
        networks.append(
            {"checkpoint": str(path), "threshold": threshold, "jaccard": whole, "per_image": float(frames.nanmean())}
        )
        per_frame.append(frames)
        polyp = [frame_logits.softmax(0)[1] for frame_logits in logits]  # one channel: half the memory
        summed = polyp if summed is None else [s + p for s, p in zip(summed, polyp)]

    scores = torch.stack(per_frame)  # networks x frames
    mean_threshold = sum(threshold for _, threshold in runs) / len(runs)
    ensemble = [torch.stack([1 - s / len(runs), s / len(runs)]).clamp_min(1e-12).log() for s in summed]
    whole, frames = polyp_scores([decide(frame_logits, mean_threshold) for frame_logits in ensemble], masks)
    return {
        "split": split,
        "frames": scores.shape[1],
        "networks": networks,
        "below": {cut: (int((scores < cut).all(0).sum()), int((scores < cut).any(0).sum())) for cut in (0.3, 0.5)},
        "hardest": scores.nanmean(0).sort().values[:8].tolist(),
        "hard": [
            {
                "frame": frame,
                "jaccard": scores[:, frame].tolist(),
                "area_ratio": [network[frame][0] for network in extents],
                "on_polyp": [network[frame][1] for network in extents],
            }
            for frame in (scores < 0.5).all(0).nonzero().flatten().tolist()
        ],
        "ensemble": {"threshold": mean_threshold, "jaccard": whole, "per_image": float(frames.nanmean())},
        "best_per_frame": float(scores.max(0).values.nanmean()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=checkpoint_and_threshold, metavar="CHECKPOINT:THRESHOLD")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    report = hard_frames(args.runs, args.split)
    for network in report["networks"]:
        print(
            f"{network['checkpoint']} at {network['threshold']:.2f}: polyp J {network['jaccard']:.3f} whole split, "
            f"{network['per_image']:.3f} per image"
        )
    print(f"{report['split']}: {report['frames']} frames, {len(report['networks'])} networks")
    for cut, (every, some) in report["below"].items():
        print(f"  frames below {cut} in every network: {every}; in at least one: {some}")
    print("  the 8 hardest frames, mean over the networks:", ", ".join(f"{v:.2f}" for v in report["hardest"]))
    for hard in report["hard"]:
        drawn = ", ".join(
            f"J {j:.2f} area x{a:.2f} ({o:.0%} on the polyp)"
            for j, a, o in zip(hard["jaccard"], hard["area_ratio"], hard["on_polyp"])
        )
        print(f"  frame {hard['frame']} (below 0.5 in every network): {drawn}")
    ensemble = report["ensemble"]
    print(
        f"  ensemble (probabilities averaged) at {ensemble['threshold']:.2f}: "
        f"{ensemble['jaccard']:.3f} / {ensemble['per_image']:.3f}"
    )
    print(f"  best network per frame, chosen with the truth (a bound): {report['best_per_frame']:.3f}")


if __name__ == "__main__":
    main()
