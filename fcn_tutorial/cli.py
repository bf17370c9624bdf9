"""The ``fcn-tutorial`` command line.

Each command lives beside the code it drives and adds itself with a ``register(subparsers)``
function: ``data`` (check, synthetic, download) in :mod:`fcn_tutorial.data.commands`, ``train`` in
:mod:`fcn_tutorial.train`, ``evaluate`` in :mod:`fcn_tutorial.evaluate`, ``predict`` in
:mod:`fcn_tutorial.predict`. Each registered parser sets ``func``, called with the parsed arguments;
it returns an exit code (``None`` means 0).

Every failure that a user can cause (a bad option, a missing or unreadable file, a full disk, a failed
download, a device that is not there, a diverged run) reaches :func:`main` as one of
:data:`EXPECTED_ERRORS` and is printed as one line, ``fcn-tutorial COMMAND: error: ...``, with exit
code 2. Ctrl-C exits with 130. Anything else is a bug: its traceback is printed, with a request to
report it, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import importlib
import re
import sys
import traceback

COMMAND_MODULES = (
    "fcn_tutorial.train",
    "fcn_tutorial.evaluate",
    "fcn_tutorial.threshold",
    "fcn_tutorial.predict",
    "fcn_tutorial.data.commands",
)

# ValueError covers UnicodeDecodeError; OSError covers FileNotFoundError, NotADirectoryError,
# IsADirectoryError, PermissionError, FileExistsError, a full disk and urllib's URLError/HTTPError;
# HTTPException covers a download cut short (IncompleteRead); FloatingPointError a diverged run.
EXPECTED_ERRORS = (ValueError, OSError, http.client.HTTPException, FloatingPointError, EOFError)

# What to do, by errno, for the OSErrors that carry one.
_ERRNO_ADVICE = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space or choose another --out",
    errno.EDQUOT: "the disk quota is exhausted: free some space or choose another --out",
    errno.EEXIST: "it already exists: choose another path",
    errno.EISDIR: "it is a folder: give a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcn-tutorial",
        description="Train, evaluate and apply Fully Convolutional Networks for polyp segmentation.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def error_message(error: BaseException) -> str:
    """One line for an expected error: the file and the problem, and what to do; no library source paths.

    >>> error_message(PermissionError(13, "Permission denied", "runs/a/best.pt"))
    'runs/a/best.pt: Permission denied (check its permissions or choose another path)'
    """
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        message = f"{error.filename}: {error.strerror}"
        if error.filename2 is not None:
            message += f" (and {error.filename2})"
        advice = _ERRNO_ADVICE.get(error.errno)
        if advice:
            message += f" ({advice})"
    elif isinstance(error, OSError) and error.strerror:
        message = error.strerror + (f" ({_ERRNO_ADVICE[error.errno]})" if error.errno in _ERRNO_ADVICE else "")
    elif isinstance(error, http.client.IncompleteRead):
        message = f"the download was cut short after {len(error.partial)} bytes; try again"
    else:
        message = str(error) or type(error).__name__
    return _clean(message)


def _clean(message: str) -> str:
    """Drop C++ dispatcher notes and the source paths of torch/torchvision from a message; keep one printable line."""
    message = re.sub(r"\s*\(?Exception raised from .*", "", message, flags=re.DOTALL)
    message = re.sub(r"\S*[\\/](?:site|dist)-packages[\\/]\S*", "", message)
    message = re.sub(r"\s*\n\s*", "; ", message.strip())
    try:  # a file name that is not UTF-8 (its bytes were decoded with surrogateescape): show its bytes as \xNN
        message = message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return message or "unknown error"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print(f"fcn-tutorial {args.command}: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as error:
        print(f"fcn-tutorial {args.command}: error: {error_message(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug: show everything, and say so
        if _is_out_of_memory(error):
            print(f"fcn-tutorial {args.command}: error: {_out_of_memory_advice(error)}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(
            f"fcn-tutorial {args.command}: unexpected error ({type(error).__name__}); this is a bug, please "
            f"report it with the traceback above to the fcn-tutorial issue tracker",
            file=sys.stderr,
        )
        return 1
    return 0 if code is None else int(code)


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def _out_of_memory_advice(error: BaseException) -> str:
    first = _clean(str(error).split(".")[0])
    return f"{first}: the device ran out of memory; lower --batch-size, --eval-batch-size or --resize, or use --amp"


if __name__ == "__main__":
    sys.exit(main())
