"""Test helper (not a test): ``fcn-tutorial train`` that stops itself in the middle of an epoch, for a SIGKILL.

``python tests/_sigkill_driver.py MARKER EPOCH ARGS...`` runs ``fcn-tutorial train ARGS...``; in epoch
``EPOCH``, once its first batch has changed the weights, it writes the file ``MARKER`` and waits forever.
The test then kills it with SIGKILL: a kill at a known point of the run, after ``last.pt`` of the epoch
before was written, whatever the speed of the machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's fcn_tutorial

from fcn_tutorial import cli, engine  # noqa: E402


class StopAfterOneBatch:
    """``loader``, except that asking for its second batch writes ``marker`` and never returns."""

    def __init__(self, loader, marker: Path):
        self.loader, self.marker = loader, marker

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index == 1:
                self.marker.write_text("one batch of the epoch done\n")
                while True:
                    time.sleep(60)
            yield batch


def main() -> int:
    marker, stop_epoch, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    real_epoch = engine.train_one_epoch

    def epoch_that_stops(model, loader, *args, epoch, **kwargs):
        if epoch == stop_epoch:
            loader = StopAfterOneBatch(loader, marker)
        return real_epoch(model, loader, *args, epoch=epoch, **kwargs)

    engine.train_one_epoch = epoch_that_stops
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
