"""Staged training, as in the FCN paper: FCN-16s starts from a trained FCN-32s, FCN-8s from a trained FCN-16s.

Long, Shelhamer and Darrell (2015, section 4.2) did not train FCN-16s and FCN-8s from scratch. They trained
FCN-32s first, then built FCN-16s *on top of it*: every layer the two nets share (the whole VGG16 path and
``score_fr``) starts with FCN-32s's trained weights, and the one new score layer, ``score_pool4``, starts at
zero, "so that the net starts with unmodified predictions". Training then only has to learn what the finer
pool4 scores add. FCN-8s was built from the trained FCN-16s the same way, with a zero ``score_pool3``.

:func:`init_from_coarser` does that copy::

    fcn32s = build_model("fcn32s", 2, preset="compact", width=0.25, batch_norm=True)
    ...  # train fcn32s
    fcn16s = init_from_coarser(build_model("fcn16s", 2, preset="compact", width=0.25, batch_norm=True), fcn32s)
    ...  # train fcn16s, then the same for fcn8s from fcn16s

"Unmodified predictions" holds up to the upsampling. FCN-32s upsamples its scores 32 times in one bilinear
step; FCN-16s upsamples the same scores 2 times, then 16 times. Two bilinear steps in a row are a slightly
smoother interpolation than one step of the same total factor, so at the start the finer net predicts the
same coarse scores, interpolated a little more smoothly (the masks differ by a pixel or so along the edges).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["init_from_coarser"]


@torch.no_grad()
def init_from_coarser(model: nn.Module, coarser: nn.Module) -> nn.Module:
    """Start ``model`` (e.g. an FCN-16s) from the trained ``coarser`` net (e.g. an FCN-32s); return ``model``.

    Every parameter and buffer that the two share by name (the backbone with its batch-norm statistics,
    ``score_fr``, and ``upscore2``/``score_pool4`` from FCN-16s to FCN-8s) is copied. Score layers that only
    ``model`` has (``score_pool4``, ``score_pool3``) are set to zero, so they add nothing until training
    moves them; the new upsampling layers keep their initialisation (bilinear in the ``paper`` and ``compact``
    presets). Both nets must be built alike: same preset, width, number of classes and batch norm.
    """
    if getattr(model, "preset", None) != getattr(coarser, "preset", None):
        raise ValueError(
            f"cannot start a {model.preset!r} {type(model).__name__} from a {coarser.preset!r} "
            f"{type(coarser).__name__}: build both with the same preset"
        )
    target, source = model.state_dict(), coarser.state_dict()
    shared = [name for name in source if name in target]
    for name in shared:
        if target[name].shape != source[name].shape:
            raise ValueError(
                f"cannot start {type(model).__name__} from {type(coarser).__name__}: {name} is "
                f"{tuple(target[name].shape)} in one and {tuple(source[name].shape)} in the other; "
                f"build both with the same width, n_classes and batch_norm"
            )
        target[name].copy_(source[name])
    missing_in_model = sorted(set(source) - set(target) - _upsampling_names(coarser))
    if missing_in_model:
        raise ValueError(
            f"{type(coarser).__name__} is not coarser than {type(model).__name__}: "
            f"{type(model).__name__} has no {', '.join(missing_in_model)}"
        )
    for name, module in model.named_modules():
        if name.startswith("score") and isinstance(module, nn.Conv2d) and f"{name}.weight" not in source:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _upsampling_names(model: nn.Module) -> set[str]:
    """The parameter names of ``model``'s transposed convolutions (``upscore32`` has no FCN-16s counterpart)."""
    return {
        f"{name}.{p}"
        for name, module in model.named_modules()
        if isinstance(module, nn.ConvTranspose2d)
        for p, _ in module.named_parameters(recurse=False)
    }
