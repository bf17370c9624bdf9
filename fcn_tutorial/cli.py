"""The ``fcn-tutorial`` command line.

Each command lives beside the code it drives and adds itself with a ``register(subparsers)``
function: ``data`` (check, synthetic, download) in :mod:`fcn_tutorial.data.commands`, ``train`` in
:mod:`fcn_tutorial.train`, ``evaluate`` in :mod:`fcn_tutorial.evaluate`, ``predict`` in
:mod:`fcn_tutorial.predict`. Each registered parser sets ``func``, called with the parsed arguments;
it returns an exit code (``None`` means 0).
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "fcn_tutorial.train",
    "fcn_tutorial.evaluate",
    "fcn_tutorial.predict",
    "fcn_tutorial.data.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcn-tutorial",
        description="Train, evaluate and apply Fully Convolutional Networks for polyp segmentation.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:
        print(f"fcn-tutorial {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fcn-tutorial {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
