"""The tiny training run the run-folder tests share: a network and data small enough for an epoch in a second."""

from __future__ import annotations

from fcn_tutorial.config import TrainConfig

# The same network on the command line (``fcn-tutorial train`` and ``torchrun``).
TINY_NETWORK_ARGS = ["--model", "fcn8s", "--preset", "compact", "--width", "0.0625", "--crop-size", "32"]


def tiny_config(data, out, **options) -> TrainConfig:
    """FCN-8s compact at width 1/16 on 32-pixel crops, two epochs, one process, no progress bars; ``options`` win."""
    values = dict(
        data=str(data),
        out=str(out),
        model="fcn8s",
        preset="compact",
        width=0.0625,
        crop_size=32,
        batch_size=4,
        epochs=2,
        lr=1e-3,
        progress=False,
        seed=0,
        num_workers=0,
    )
    return TrainConfig(**{**values, **options})
