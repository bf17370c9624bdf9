"""``fcn-tutorial train``: the command line of a training run, and the names this module always exported.

The trainer is split by concern, each part short enough to read in one sitting:

* :mod:`fcn_tutorial.config`: :class:`TrainConfig`, the recipes, and the command-line options generated
  from its fields;
* :mod:`fcn_tutorial.engine`: :func:`train_one_epoch` and :func:`evaluate`, the loop that chapter 6 prints;
* :mod:`fcn_tutorial.run`: :func:`train`, the run folder, early stopping, the time limit, checkpoints,
  history and resuming;
* :mod:`fcn_tutorial.scoring`: the one way the package scores a network (used by all of the above).

``from fcn_tutorial.train import TrainConfig, train, train_one_epoch, evaluate`` keeps working. The
other names that used to live here still import from here for one release, with a
``DeprecationWarning`` that names their new home.
"""

from __future__ import annotations

import argparse
import importlib
import warnings

from .config import TrainConfig, add_config_arguments, config_from_args
from .engine import NonFiniteLossError, evaluate, train_one_epoch
from .run import train

__all__ = [
    "TrainConfig",
    "train",
    "train_one_epoch",
    "evaluate",
    "NonFiniteLossError",
    "register",
    "add_train_arguments",
]

# Names that moved out of this module: name -> (module, name there).
_MOVED = {
    "PRESET_RECIPES": ("fcn_tutorial.config", "RECIPES"),
    "RESUMABLE_OPTIONS": ("fcn_tutorial.config", "resumable_options"),
    "build_model_for": ("fcn_tutorial.config", "build_model_for"),
    "segmentation_loss": ("fcn_tutorial.engine", "segmentation_loss"),
    "build_optimizer": ("fcn_tutorial.engine", "build_optimizer"),
    "build_scheduler": ("fcn_tutorial.engine", "build_scheduler"),
    "precision_plan": ("fcn_tutorial.precision", "precision_plan"),
    "cpu_supports_bf16": ("fcn_tutorial.precision", "cpu_supports_bf16"),
    "epoch_seed": ("fcn_tutorial.run", "epoch_seed"),
    "seed_everything": ("fcn_tutorial.run", "seed_everything"),
    "configure_determinism": ("fcn_tutorial.run", "configure_determinism"),
    "InMemoryDataset": ("fcn_tutorial.run", "InMemoryDataset"),
    "build_datasets": ("fcn_tutorial.run", "build_datasets"),
    "RunLog": ("fcn_tutorial.run", "RunLog"),
    "epoch_line": ("fcn_tutorial.run", "epoch_line"),
    "final_line": ("fcn_tutorial.run", "final_line"),
    "monitored_value": ("fcn_tutorial.run", "monitored_value"),
    "VOID": ("fcn_tutorial.data", "VOID"),
}


def __getattr__(name: str):
    """The old home of a moved name: warn once per use, then hand out the name from its new module."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new_name = _MOVED[name]
    warnings.warn(
        f"fcn_tutorial.train.{name} moved to {module}.{new_name}; the old path goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    value = getattr(importlib.import_module(module), new_name)
    if name == "RESUMABLE_OPTIONS":
        return value()
    return value


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """``fcn-tutorial train``'s arguments: ``--resume`` and one per :class:`TrainConfig` field."""
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR (with its config.json)"
    )
    add_config_arguments(parser)


def _run(args: argparse.Namespace) -> int:
    config, resume = config_from_args(args)
    train(config, resume=resume)  # a diverged run's NonFiniteLossError says which epochs the checkpoints hold
    return 0


def register(subparsers) -> None:
    """Add ``fcn-tutorial train`` to the command line."""
    parser = subparsers.add_parser(
        "train",
        help="train an FCN",
        description="Train an FCN on a segmentation data set (see fcn_tutorial.run). Options left out take "
        "TrainConfig's defaults, or a recipe's with --recipe (--preset original implies "
        "--recipe original, the 2017 tutorial's).",
    )
    add_train_arguments(parser)
    parser.set_defaults(func=_run)
