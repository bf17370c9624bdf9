"""``fcn-tutorial data``: ``check`` a folder, make a ``synthetic`` set, ``download`` a data set."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers) -> None:
    """Add ``data check``, ``data synthetic`` and ``data download`` to the ``fcn-tutorial`` parser."""
    parser = subparsers.add_parser(
        "data",
        help="check, generate or download polyp data",
        description="Check a data folder, generate the synthetic set, or download a data set.",
    )
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    check = commands.add_parser("check", help="report every problem of a data folder (exit code 1 if any)")
    check.add_argument("path", help="a folder: images/ + masks/, train/images/ + train/masks/, or CVC-912's layout")
    check.add_argument(
        "--threshold",
        type=int,
        default=None,
        help="mask values >= this are polyp (default: 128 for JPEG masks, else exact 0/255)",
    )
    check.add_argument(
        "--classes", type=int, default=2, choices=(2, 3, 4), help="CVC-912 only: read masks2/, masks3/ or masks4/"
    )
    check.set_defaults(func=run_check)

    synthetic = commands.add_parser("synthetic", help="write a synthetic polyp set in the CVC-912 layout")
    synthetic.add_argument("out", help="a new folder")
    synthetic.add_argument("--train", type=int, default=80, help="training frames (default 80)")
    synthetic.add_argument("--valid", type=int, default=20, help="validation frames (default 20)")
    synthetic.add_argument("--test", type=int, default=20, help="test frames (default 20)")
    synthetic.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(288, 384),
        metavar=("HEIGHT", "WIDTH"),
        help="frame size (default 288 384)",
    )
    synthetic.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed writes the same set (default 0)"
    )
    synthetic.set_defaults(func=run_synthetic)

    download = commands.add_parser("download", help="download kvasir-seg or polyps912 (CVC-912)")
    download.add_argument("name", choices=["kvasir-seg", "polyps912"])
    download.add_argument(
        "--root",
        default=None,
        help="where to put it (default: <data>/<name>, <data> being $FCN_TUTORIAL_DATA or ~/.cache/fcn-tutorial)",
    )
    download.add_argument("--url", default=None, help="kvasir-seg: the archive's address (default: the official one)")
    download.add_argument("--sha256", default=None, help="kvasir-seg: the archive's expected sha256")
    download.add_argument(
        "--gdrive-id",
        default=None,
        help="polyps912: the Google Drive id of polyps_split7.zip (default: the 2017 tutorial's)",
    )
    download.set_defaults(func=run_download)


def run_check(args: argparse.Namespace) -> int:
    from .check import check_folder

    report = check_folder(args.path, threshold=args.threshold, n_classes=args.classes)
    print(report)
    return 0 if report.ok else 1


def run_synthetic(args: argparse.Namespace) -> int:
    from .synthetic import make_synthetic_polyps

    root = make_synthetic_polyps(args.out, args.train, args.valid, args.test, size=tuple(args.size), seed=args.seed)
    print(f"wrote {args.train} + {args.valid} + {args.test} synthetic frames to {root}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from .download import download_kvasir_seg, download_polyps912

    if args.name == "kvasir-seg":
        root = download_kvasir_seg(args.root, url=args.url, sha256=args.sha256)
    else:
        root = download_polyps912(args.gdrive_id, args.root)
    print(f"{args.name} is in {root}")
    return 0
