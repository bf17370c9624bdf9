"""An honest validation score for a two-class run: the threshold chosen on one half of val, scored on the other.

``fcn-tutorial threshold --split val`` chooses the decision threshold on the validation frames, and scoring
validation at that threshold flatters the run a little, since the same frames chose it. This script sweeps
the validation split once (flip TTA, as the recipe does), splits its frames into the even and the odd ones,
chooses the threshold on each half and scores the other half with it, and pools the two scored halves into
one whole-split and one per-image polyp Jaccard. It was used to check the README's lever comparison::

    FCN_TUTORIAL_DATA=../shared/data python benchmarks/threshold_twofold.py runs/kvasir-cpu-seed*/best.pt
"""

from __future__ import annotations

import argparse

import torch

from fcn_tutorial.metrics import _jaccard
from fcn_tutorial.threshold import checkpoint_sweep


def twofold(checkpoint: str) -> dict:
    """Each half's threshold (chosen on the other half) and the pooled polyp Jaccard of both scored halves."""
    sweep, _ = checkpoint_sweep(checkpoint, split="val", tta=True, device="cpu", progress=False)
    n_frames = len(sweep.counts)
    even, odd = list(range(0, n_frames, 2)), list(range(1, n_frames, 2))
    confusion, per_image, thresholds = torch.zeros(2, 2, dtype=torch.int64), [], []
    for choose, score in ((even, odd), (odd, even)):
        threshold = sweep.subset(choose).best()
        k = sweep.thresholds.index(threshold)
        scored = sweep.subset(score)
        confusion += scored.confusions()[k]
        per_image.append(_jaccard(scored.confusions(per_image=True)[:, k])[:, 1])
        thresholds.append(threshold)
    return {
        "checkpoint": checkpoint,
        "thresholds": thresholds,
        "jaccard": _jaccard(confusion[None])[0, 1].item(),
        "per_image_jaccard": torch.cat(per_image).nanmean().item(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="best.pt of two-class runs")
    args = parser.parse_args(argv)
    print("checkpoint  thresholds (chosen on the other half)  polyp Jaccard whole / per image")
    for checkpoint in args.checkpoints:
        r = twofold(checkpoint)
        print(f"{checkpoint}  {r['thresholds']}  {r['jaccard']:.3f} / {r['per_image_jaccard']:.3f}", flush=True)


if __name__ == "__main__":
    main()
