"""Forward GFLOPs and parameters of FCN-32s, FCN-16s and FCN-8s in each preset, side by side.

Counts, not timings: the networks are built on PyTorch's meta device (no memory, no arithmetic) and
``fcn_tutorial.models.count_flops`` adds up 2 x the multiply-adds of every convolution and transposed
convolution. The last column is the cost of the paper's padding of 100 pixels: each preset's GFLOPs
at the second size divided by those of the ``compact`` preset (no padding trick) of the same variant.

    .venv/bin/python benchmarks/flops.py [--n-classes 2] [--width 1.0] [--sizes 224x224 288x384]

Prints a Markdown table (for the README).
"""

from __future__ import annotations

import argparse

import torch

from fcn_tutorial.models import MODELS, PRESETS, build_model, count_flops


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HEIGHTxWIDTH, e.g. 288x384") from None
    return height, width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-classes", type=int, default=2)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[(224, 224), (288, 384)])
    args = parser.parse_args()

    names = [f"{h}x{w}" for h, w in args.sizes]
    rows = []  # (model, preset, parameters, [FLOPs per size])
    for model_name in MODELS:
        for preset in PRESETS:
            with torch.device("meta"):
                model = build_model(model_name, args.n_classes, preset=preset, width=args.width)
            n_params = sum(p.numel() for p in model.parameters())
            rows.append((model_name, preset, n_params, [count_flops(model, size) for size in args.sizes]))
    compact = {model_name: flops[-1] for model_name, preset, _, flops in rows if preset == "compact"}

    header = ["model", "preset", "parameters", *[f"GFLOPs {name}" for name in names], f"x compact ({names[-1]})"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for model_name, preset, n_params, flops in rows:
        cells = [
            model_name,
            preset,
            f"{n_params:,}",
            *[f"{f / 1e9:.1f}" for f in flops],
            f"{flops[-1] / compact[model_name]:.2f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        f"\nwidth {args.width}, {args.n_classes} classes; x compact: GFLOPs over the same variant's compact "
        f"preset (no padding of 100) at {names[-1]}."
    )


if __name__ == "__main__":
    main()
