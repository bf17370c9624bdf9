"""After the network: does a lower decision threshold, multi-scale TTA or a clean-up of the masks help?

A two-class network says "polyp" where the polyp probability beats 0.5. This script takes a checkpoint,
computes the flip-averaged polyp probability of every validation and test frame at full size (as
``fcn-tutorial evaluate --tta`` does), and scores the polyp Jaccard, whole-split and per image, when

* the threshold is 0.3, 0.4, 0.5 (argmax) or 0.6 (the package's ``fcn-tutorial threshold`` sweeps it
  finely on one split; here it is crossed with the other two changes);
* the probabilities are also averaged over input sizes 0.875, 1 and 1.125 times the training size;
* only the largest connected region is kept, holes are filled, or only the regions with a confident core
  are kept (hysteresis: a region above the threshold survives if its peak probability beats 0.8, 0.9 or
  0.95, as in Canny's edge detector); these clean-ups are applied at ``--threshold`` (the run's validation
  threshold) and need SciPy (skipped without it).

This is how the decision threshold was found: the README's CPU recipe scored best on validation from 0.3,
so it became ``fcn-tutorial threshold`` and a step of the recipe. The other two changed little (README)::

    FCN_TUTORIAL_DATA=../shared/data python benchmarks/postprocess.py runs/kvasir-cpu/best.pt --threshold 0.25
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from fcn_tutorial.data import registry
from fcn_tutorial.evaluate import load_model
from fcn_tutorial.scoring import predict_logits

sys.path.insert(0, str(Path(__file__).parent))
from hard_frames import polyp_scores  # noqa: E402  (one scorer for both diagnostics)

THRESHOLDS = (0.3, 0.4, 0.5, 0.6)


@torch.no_grad()
def polyp_probabilities(model, config, dataset, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(probability, mask)`` per frame: the flip-averaged polyp probability at full size, averaged over ``sizes``."""
    frames = []
    for index in range(len(dataset)):
        image, mask = dataset[index]
        probability = sum(
            predict_logits(model, [image], size=size, normalize=config.normalize, tta=True)[0].softmax(0)[1]
            for size in sizes
        ) / len(sizes)
        frames.append((probability.numpy(), mask.numpy()))
    return frames


def polyp_jaccard(frames, threshold: float = 0.5, clean=None) -> tuple[float, float]:
    """Whole-split and per-image polyp Jaccard of ``probability > threshold`` (then ``clean``), void ignored."""
    predicted, masks = [], []
    for probability, mask in frames:
        decided = probability > threshold
        if clean is not None:
            decided = clean(decided, probability)
        predicted.append(torch.from_numpy(np.asarray(decided, dtype=np.int64)))
        masks.append(torch.from_numpy(mask))
    whole, per_frame = polyp_scores(predicted, masks)
    return whole, float(per_frame.nanmean())  # a frame with no polyp drawn or true is left out (NaN)


def clean_ups() -> dict:
    try:
        from scipy import ndimage
    except ImportError:
        print("(SciPy is not installed: the clean-ups are skipped)")
        return {}

    def largest_region(predicted, probability):
        labels, count = ndimage.label(predicted)
        if count <= 1:
            return predicted
        sizes = ndimage.sum(predicted, labels, range(1, count + 1))
        return labels == 1 + int(np.argmax(sizes))

    def holes_filled(predicted, probability):
        return ndimage.binary_fill_holes(predicted)

    def confident_core(core: float):
        """Keep the regions whose peak probability beats ``core`` (the most confident one if none does)."""

        def clean(predicted, probability):
            labels, count = ndimage.label(predicted)
            if count == 0:
                return predicted
            peaks = ndimage.maximum(probability, labels, range(1, count + 1))
            keep = np.concatenate([[False], peaks > core])
            keep[1 + int(np.argmax(peaks))] = True
            return keep[labels]

        return clean

    return {
        "largest region": largest_region,
        "holes filled": holes_filled,
        **{f"core > {core:g}": confident_core(core) for core in (0.8, 0.9, 0.95)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--splits", nargs="+", default=["val", "test"])
    parser.add_argument("--threshold", type=float, default=0.5, help="where the clean-ups start (default: 0.5)")
    args = parser.parse_args(argv)
    model, config = load_model(args.checkpoint, "cpu")
    model.eval()
    base = config.resize or 256
    scales = {"one size": [base], "three sizes": [round(base * 0.875), base, round(base * 1.125)]}
    for split in args.splits:
        dataset = registry.get_dataset(config.data, split, n_classes=config.n_classes)
        for name, sizes in scales.items():
            frames = polyp_probabilities(model, config, dataset, sizes)
            for threshold in THRESHOLDS:
                whole, per_image = polyp_jaccard(frames, threshold)
                print(f"{split:4} {name:11} threshold {threshold:.1f}: polyp J {whole:.4f}, per image {per_image:.4f}")
            if name == "one size":
                for clean_name, clean in {"no clean-up": None, **clean_ups()}.items():
                    whole, per_image = polyp_jaccard(frames, args.threshold, clean)
                    print(
                        f"{split:4} {name:11} threshold {args.threshold:.2f}, {clean_name:14}: "
                        f"polyp J {whole:.4f}, per image {per_image:.4f}"
                    )


if __name__ == "__main__":
    main()
