"""Issue #9, the run, command-line and inference half: nothing lost, nothing silent.

* a diverged run never saves NaN weights, and says which epochs its checkpoints hold;
* a run folder belongs to one run at a time (``run.lock``), and a stale lock is taken over;
* a ``kill -9`` during a checkpoint write leaves temporaries that the next start removes;
* ``predict`` never overwrites a file it did not write, never names two outputs alike, bounds the
  network's input, and never downloads anything to load a checkpoint;
* every expected failure of the command line is one line and exit code 2; a bug says it is one.
"""

from __future__ import annotations

import dataclasses
import errno
import http.client
import http.server
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from fcn_tutorial import cli, engine, predict, run
from fcn_tutorial.checkpoint import load_checkpoint, save_checkpoint
from fcn_tutorial.config import TrainConfig
from fcn_tutorial.data import make_synthetic_polyps
from fcn_tutorial.evaluate import load_model
from fcn_tutorial.history import read_history
from fcn_tutorial.runlock import LOCK_NAME, RunFolderBusyError, RunFolderLock
from fcn_tutorial.scoring import NonFiniteLogitsError, evaluate

from tiny import TINY_NETWORK_ARGS, tiny_config

REPO = Path(__file__).resolve().parents[1]
TINY = [
    *TINY_NETWORK_ARGS,
    "--batch-size",
    "4",
    "--num-workers",
    "0",
    "--no-progress",
    "--no-test",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_polyps(root, n_train=8, n_valid=4, n_test=2, size=(40, 48), seed=0, progress=False)


def tiny(data, out, **options) -> TrainConfig:
    """The shared tiny run, without the final test scoring."""
    return tiny_config(data, out, **{"test": False, **options})


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A finished two-epoch run folder."""
    config = tiny(data, tmp_path_factory.mktemp("runs") / "done")
    run.train(config)
    return config


def finite(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_checkpoint(path)["model"].values() if t.is_floating_point())


# --------------------------------------------------------------------------------------------
# 1. A diverged run is never saved as best


def test_an_absurd_learning_rate_leaves_only_finite_checkpoints(data, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(
        ["train", "--data", str(data), "--out", str(out), *TINY, "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "lower --lr" in err and ("holds epoch" in err or "no checkpoint was written" in err), err
    for name in ("best.pt", "last.pt"):
        if (out / name).exists():
            assert finite(out / name), name
    assert "stopped:" in (out / "train.log").read_text()  # the log says it too


def test_weights_that_turn_nan_after_the_step_are_never_saved(data, tmp_path, monkeypatch):
    real = engine.train_one_epoch

    def poisoned(model, *args, epoch, **kwargs):
        loss = real(model, *args, epoch=epoch, **kwargs)
        if epoch == 2:  # the loss was finite; the optimiser step was not
            with torch.no_grad():
                next(model.parameters()).fill_(math.nan)
        return loss

    monkeypatch.setattr(engine, "train_one_epoch", poisoned)
    out = tmp_path / "run"
    with pytest.raises(engine.NonFiniteLossError) as caught:
        run.train(tiny(data, out, epochs=3))
    message = str(caught.value)
    assert "during epoch 2" in message and f"{out / 'last.pt'} holds epoch 1" in message, message
    assert "last good" not in message
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and finite(out / "last.pt") and finite(out / "best.pt")
    assert [row["epoch"] for row in read_history(out / "history.csv")] == [1]


class NaNScores(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images) * math.nan


def test_a_nan_validation_is_recorded_and_never_the_best(data, tmp_path, monkeypatch):
    real, calls = run.evaluate, []

    def nan_at_epoch_2(model, *args, **kwargs):
        calls.append(1)
        return real(NaNScores(model) if len(calls) == 2 else model, *args, **kwargs)

    monkeypatch.setattr(run, "evaluate", nan_at_epoch_2)
    out = tmp_path / "run"
    history = run.train(tiny(data, out, epochs=3, patience=5))
    assert math.isnan(history[1]["val_loss"]) and math.isnan(history[1]["val_jaccard_mean"])
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] != 2 and finite(out / "best.pt") and finite(out / "last.pt")
    assert "epoch 2: the network's scores are NaN" in (out / "train.log").read_text()


def test_nan_logits_raise_in_evaluate_and_are_never_an_improvement(data):
    model = NaNScores(nn.Conv2d(3, 2, 1))
    loader = [([torch.rand(3, 8, 8)], [torch.zeros(8, 8, dtype=torch.int64)])]
    with pytest.raises(NonFiniteLogitsError, match="NaN or infinite on 1 frame"):
        evaluate(model, loader, 2, torch.device("cpu"))
    assert run.monitored_value({"val_jaccard_mean": 0.9, "val_loss": math.inf}, "mean") == -math.inf
    assert run.monitored_value({"val_jaccard_mean": math.nan, "val_loss": 0.1}, "mean") == -math.inf


def test_a_checkpoint_with_nan_weights_is_refused(finished, tmp_path):
    state = load_checkpoint(Path(finished.out) / "best.pt")
    next(iter(state["model"].values())).fill_(math.nan)
    save_checkpoint(state, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        load_model(tmp_path / "nan.pt", "cpu")


# --------------------------------------------------------------------------------------------
# 2. One run per run folder; 3. stale temporaries


def test_a_second_run_into_a_running_folder_is_refused(data, tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FCN_TUTORIAL_PROFILE": ""}
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fcn_tutorial",
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            *TINY,
            "--epochs",
            "100000",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists():  # the first run owns the folder and has finished an epoch
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        for arguments in (["--data", str(data), "--out", str(out), *TINY], ["--resume", str(out)]):
            assert cli.main(["train", *arguments]) == 2
            err = capsys.readouterr().err
            assert f"is in use by process {first.pid}" in err and "Traceback" not in err, err
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == first.pid  # untouched
    finally:
        first.kill()
        first.wait()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_lock_is_taken_over_and_stale_temporaries_removed(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished.out, out)
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "since": "then"}))
    stale = [out / ".last.pt.k9x2ab.tmp", out / ".best.pt.0q1w2e.tmp"]  # what a kill -9 during a save leaves
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    run.train(dataclasses.replace(finished, out=str(out), epochs=3), resume=True)
    assert not any(path.exists() for path in stale) and not list(out.glob(".*.tmp"))
    assert not (out / LOCK_NAME).exists()  # given back at the end
    assert "removed 2 temporary file(s)" in (out / "train.log").read_text()


def test_a_live_lock_keeps_its_temporaries_and_the_lock_is_given_back_after_an_error(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished.out, out)
    temporary = out / ".last.pt.abcdef.tmp"
    temporary.write_bytes(b"being written by the owner")
    with RunFolderLock(out):  # held by this process: the run below is a second one
        with pytest.raises(RunFolderBusyError, match=f"process {os.getpid()}"):
            run.train(dataclasses.replace(finished, out=str(out), epochs=3), resume=True)
        assert temporary.exists()
    assert not (out / LOCK_NAME).exists()
    with pytest.raises(ValueError, match="already holds a run"):  # an error inside the run gives the lock back
        run.train(dataclasses.replace(finished, out=str(out)))
    assert not (out / LOCK_NAME).exists()


def test_which_locks_are_stale(tmp_path):
    lock = tmp_path / LOCK_NAME
    here = socket.gethostname()
    # a reused process id: the process that holds it now started after the lock was written
    lock.write_text(json.dumps({"pid": os.getppid(), "host": here, "process_start": "1"}))
    with RunFolderLock(tmp_path) as taken:
        assert taken.took_over["process_start"] == "1" and json.loads(lock.read_text())["pid"] == os.getpid()
    lock.write_text("{half a lo")  # a half-written lock, just now: its writer is still at it
    with pytest.raises(RunFolderBusyError):
        RunFolderLock(tmp_path).acquire()
    os.utime(lock, (time.time() - 60, time.time() - 60))  # ... and a minute later, one a kill -9 left
    RunFolderLock(tmp_path).acquire().release()
    lock.write_text(json.dumps({"pid": 1, "host": "another-machine", "since": "09:00"}))  # cannot be checked
    with pytest.raises(RunFolderBusyError, match=f"in use by process 1 on another-machine .* delete {lock}"):
        RunFolderLock(tmp_path).acquire()


def test_two_processes_taking_over_one_stale_lock_one_wins(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    script = (
        f"import sys, time; sys.path.insert(0, {str(REPO)!r}); from fcn_tutorial.runlock import RunFolderLock\n"
        f"lock = RunFolderLock({str(tmp_path)!r})\n"
        "try:\n    lock.acquire(); print('won', flush=True); time.sleep(2)\n"
        "except FileExistsError: print('refused', flush=True)\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    results = sorted(process.communicate(timeout=120)[0].strip() for process in processes)
    assert results == ["refused", "refused", "won"]


# --------------------------------------------------------------------------------------------
# 4. predict: no overwrite, no collision, bounded memory, no network


@pytest.fixture()
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, size in (("x.jpg", (48, 40)), ("x.png", (40, 32)), ("a.jpg", (48, 40))):
        Image.new("RGB", size, (200, 90, 80)).save(folder / name)
    return folder


def test_inputs_that_share_a_stem_get_their_own_outputs(finished, frames, tmp_path):
    written = predict.predict_files(Path(finished.out) / "best.pt", [frames], tmp_path / "out", progress=False)
    names = sorted(path.name for pair in written for path in pair)
    assert names == [
        "a_mask.png",
        "a_overlay.png",
        "x.jpg_mask.png",
        "x.jpg_overlay.png",
        "x.png_mask.png",
        "x.png_overlay.png",
    ]
    with Image.open(tmp_path / "out" / "x.jpg_mask.png") as jpg, Image.open(tmp_path / "out" / "x.png_mask.png") as png:
        assert jpg.size == (48, 40) and png.size == (40, 32)
    assert predict.output_names([Path("a/x.jpg"), Path("b/x.jpg"), Path("b/X.png")]) == ["a_x.jpg", "b_x.jpg", "X.png"]


def test_predict_into_the_input_folder_never_replaces_a_ground_truth(finished, frames, capsys):
    truth = frames / "a_mask.png"
    Image.new("L", (48, 40), 255).save(truth)
    before = truth.read_bytes()
    checkpoint = str(Path(finished.out) / "best.pt")
    assert cli.main(["predict", checkpoint, str(frames), "--out", str(frames), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "a_mask.png already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert truth.read_bytes() == before and sorted(p.name for p in frames.iterdir()) == [
        "a.jpg",
        "a_mask.png",
        "x.jpg",
        "x.png",
    ]  # nothing written at all
    # --overwrite never replaces it either: a mask beside the frames is protected like the frames themselves
    assert cli.main(["predict", checkpoint, str(frames), "--out", str(frames), "--overwrite", "--no-progress"]) == 2
    assert "is one of the input images or a mask beside them" in capsys.readouterr().err
    assert truth.read_bytes() == before


def test_predict_takes_no_mask_or_earlier_output_for_a_frame(finished, frames, tmp_path, capsys):
    checkpoint = str(Path(finished.out) / "best.pt")
    Image.new("L", (48, 40), 255).save(frames / "a_mask.png")  # a ground truth beside its frame
    first = cli.main(["predict", checkpoint, str(frames), "--out", str(tmp_path / "one"), "--no-progress"])
    assert first == 0 and "left out 1 file(s) named like masks or overlays" in capsys.readouterr().err
    assert len(list((tmp_path / "one").iterdir())) == 6  # a.jpg, x.jpg and x.png: a mask and an overlay each
    # the first run's outputs, in the folder given to a second run, are not segmented again
    again = cli.main(["predict", checkpoint, str(tmp_path / "one"), str(frames), "--out", str(tmp_path / "two")])
    assert again == 2 and "holds only masks or overlays" in capsys.readouterr().err
    assert not (tmp_path / "two").exists()
    # a mask named on its own is taken: the user asked for it
    assert cli.main(["predict", checkpoint, str(frames / "a_mask.png"), "--out", str(tmp_path / "three")]) == 0
    assert sorted(p.name for p in (tmp_path / "three").iterdir()) == ["a_mask_mask.png", "a_mask_overlay.png"]


def test_a_second_predict_needs_overwrite(finished, frames, tmp_path, capsys):
    arguments = [
        "predict",
        str(Path(finished.out) / "best.pt"),
        str(frames / "a.jpg"),
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
    ]
    assert cli.main(arguments) == 0
    assert cli.main(arguments) == 2 and "already exists" in capsys.readouterr().err
    assert cli.main([*arguments, "--overwrite"]) == 0


def test_an_unreadable_frame_is_skipped_and_named_and_the_others_are_written(finished, frames, tmp_path, capsys):
    whole = (frames / "a.jpg").read_bytes()
    (frames / "a.jpg").write_bytes(whole[: len(whole) // 2])  # truncated
    (frames / "b.jpg").write_text("not a picture")
    out = tmp_path / "o"
    arguments = ["predict", str(Path(finished.out) / "best.pt"), str(frames), "--out", str(out), "--no-progress"]
    assert cli.main(arguments) == 2
    err = capsys.readouterr().err
    assert err.count("skipped: ") == 2 and "Traceback" not in err, err
    assert "2 image(s) could not be read and have no mask" in err and f"the other 2 were written to {out}" in err
    assert sorted(path.name for path in out.iterdir() if path.name.endswith("_mask.png")) == [
        "x.jpg_mask.png",
        "x.png_mask.png",
    ]


def test_a_huge_frame_is_downscaled_for_the_network_with_a_message(finished, frames, tmp_path, monkeypatch, capsys):
    assert predict.network_input_size(10_000, 10_000, None, 4_000_000) == (2000, True)
    assert predict.network_input_size(10_000, 20_000, 512, 4_000_000) == (512, False)
    side, lowered = predict.network_input_size(6000, 8000, None, 4_000_000)
    assert lowered and side * side * 8000 / 6000 <= 4_000_000
    seen = []
    real = predict.predict

    def spy(model, image, *, size, normalize, **options):
        seen.append(size)
        return real(model, image, size=size, normalize=normalize, **options)

    monkeypatch.setattr(predict, "predict", spy)
    assert (
        cli.main(
            [
                "predict",
                str(Path(finished.out) / "best.pt"),
                str(frames / "x.jpg"),
                "--out",
                str(tmp_path / "o"),
                "--max-input-pixels",
                "600",
                "--no-progress",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "x.jpg is 48x40: over the limit of 600 pixels" in err and seen == [22]
    with Image.open(tmp_path / "o" / "x_mask.png") as mask:
        assert mask.size == (48, 40)  # the mask is at full size
    monkeypatch.setenv(predict.MAX_INPUT_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match="FCN_TUTORIAL_MAX_INPUT_PIXELS must be a positive"):
        predict.max_input_pixels()


def test_a_pretrained_backbone_checkpoint_loads_without_the_network(finished, frames, tmp_path, monkeypatch):
    state = load_checkpoint(Path(finished.out) / "best.pt")
    state["config"]["pretrained_backbone"] = True
    save_checkpoint(state, tmp_path / "pretrained.pt")

    def no_network(*args, **kwargs):
        raise AssertionError("loading a checkpoint touched the network")

    from fcn_tutorial.models import fcn

    monkeypatch.setattr(fcn, "load_vgg16_weights", no_network)  # where ImageNet's weights would be fetched
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(AssertionError, match="touched the network"):  # the guard works
        fcn.build_model("fcn8s", 2, preset="compact", width=0.0625, pretrained_backbone=True)
    model, config = load_model(tmp_path / "pretrained.pt", "cpu")
    assert config.pretrained_backbone
    assert predict.predict_files(tmp_path / "pretrained.pt", [frames / "a.jpg"], tmp_path / "o", progress=False)


# --------------------------------------------------------------------------------------------
# 5. No tracebacks: one error path


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("--width must be in (0, 4], got inf"), "--width must be in"),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "runs/a/best.pt"),
            "runs/a/best.pt: No such file",
        ),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "frames/a.jpg/x"), "frames/a.jpg/x: Not a directory"),
        (
            PermissionError(errno.EACCES, "Permission denied", "out/a_mask.png"),
            "out/a_mask.png: Permission denied (check",
        ),
        (FileExistsError(errno.EEXIST, "File exists", "out/a_mask.png"), "out/a_mask.png: File exists"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "runs/a"), "runs/a: Is a directory (it is a folder"),
        (
            OSError(errno.ENOSPC, "No space left on device", "runs/a/last.pt"),
            "runs/a/last.pt: No space left on device (the ",
        ),
        (urllib.error.HTTPError("https://x/k.zip", 404, "Not Found", {}, None), "HTTP Error 404: Not Found"),
        (urllib.error.URLError("connection refused"), "connection refused"),
        (http.client.IncompleteRead(b"12345", 10), "cut short after 5 bytes"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "can't decode byte 0xff"),
        (engine.NonFiniteLossError("the training loss is nan at epoch 2"), "the training loss is nan"),
        (RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB"), "the device ran out of memory"),
        (
            ValueError(
                "could not read /usr/lib/python3/site-packages/torchvision/io/image.py:123 frames/\udcff.jpg\n"
                "Exception raised from decode at /pytorch/aten/src/ATen/x.cpp:12 (most recent call first):\n#0 ..."
            ),
            "could not read  frames/\\xff.jpg",
        ),
    ],
)
def test_every_expected_error_is_one_line_and_exit_2(error, expected, tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(predict, "predict_files", fail)
    assert cli.main(["predict", "best.pt", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fcn-tutorial predict: error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "site-packages" not in err
    assert "Exception raised from" not in err


def test_a_bug_shows_its_traceback_and_says_so_and_ctrl_c_is_130(tmp_path, monkeypatch, capsys):
    def bug(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(predict, "predict_files", bug)
    assert cli.main(["predict", "best.pt", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "this is a bug, please report it" in err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(predict, "predict_files", interrupted)
    assert cli.main(["predict", "best.pt", str(tmp_path), "--out", str(tmp_path / "o")]) == 130


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4480 vs 4374"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_full_disk_during_a_checkpoint_write_is_one_line(failure, data, tmp_path, monkeypatch, capsys):
    from fcn_tutorial import checkpoint

    def full(state, file):
        file.write(b"x" * 100)
        raise failure

    monkeypatch.setattr(checkpoint.torch, "save", full)
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(data), "--out", str(out), *TINY, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'best.pt'}: could not write the checkpoint" in err and "the disk is full" in err, err
    assert not list(out.glob(".*.tmp")) and not (out / LOCK_NAME).exists()


def test_a_device_that_is_not_there_is_one_line(finished, frames, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert (
        cli.main(
            [
                "predict",
                str(Path(finished.out) / "best.pt"),
                str(frames),
                "--out",
                str(tmp_path / "o"),
                "--device",
                "cuda:0",
            ]
        )
        == 2
    )
    assert "has no CUDA GPU" in capsys.readouterr().err


@pytest.fixture()
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/cut.zip":  # announces 1000 bytes, sends 10
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"PK" + b"0" * 8)
                self.close_connection = True
                return
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/missing.zip", "/cut.zip"])
def test_a_failed_download_is_one_line(path, http_server, tmp_path, capsys):
    code = cli.main(["data", "download", "kvasir-seg", "--root", str(tmp_path / "k"), "--url", http_server + path])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # above it: the progress bar of the download
    assert code == 2 and "Traceback" not in err and last.startswith("fcn-tutorial data: error: download of"), err


def test_a_config_json_that_is_not_utf8_is_one_line(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished.out, out)
    (out / "config.json").write_bytes(b'{"width": "\xff"}')
    assert cli.main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "config.json is not a readable config" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# 6. Arguments that crash or do nothing


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--width", "1000"], r"--width must be in \(0, 4\], got 1000"),
        (["--crop-size", "100000"], r"--crop-size must be in \[1, 8192\], got 100000"),
        (["--epochs", "0"], r"--epochs must be in \[1, 1e\+06\], got 0"),
        (["--n-train", "0"], r"--n-train must be >= 1, got 0"),
        (["--lr", "inf"], r"--lr must be >= 0, got inf"),
        (["--lr", "nan"], r"--lr must be >= 0, got nan"),
        (["--class-weights", "1", "2", "3"], r"one weight per class \(2\), got 3"),
        (["--scale", "1.5", "0.5"], r"--scale MIN MAX needs MIN <= MAX, got 1.5 0.5 \(did you mean 0.5 1.5\?\)"),
        (["--batch-size", "0"], r"--batch-size must be in \[1, 4096\]"),
    ],
)
def test_train_options_out_of_range(arguments, message, capsys):
    assert cli.main(["train", "--data", "synthetic", "--out", "never-written", *arguments]) == 2
    err = capsys.readouterr().err
    assert __import__("re").search(message, err) and "Traceback" not in err, err
    assert not Path("never-written").exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["predict", "{ckpt}", "{frames}", "--out", "{tmp}", "--resize", "0"], "--resize must be 'train', 'full' or"),
        (["predict", "{ckpt}", "{frames}", "--out", "{tmp}", "--max-input-pixels", "-5"], "--max-input-pixels must be"),
        (["evaluate", "{ckpt}", "--batch-size", "0"], r"--batch-size must be in [1, 4096]"),
        (["evaluate", "{ckpt}", "--num-workers", "-1"], r"--num-workers must be in [0, 256]"),
    ],
)
def test_predict_and_evaluate_options_out_of_range(command, message, finished, frames, tmp_path, capsys):
    values = {"{ckpt}": str(Path(finished.out) / "best.pt"), "{frames}": str(frames), "{tmp}": str(tmp_path / "o")}
    assert cli.main([values.get(part, part) for part in command]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_validation_split_is_an_error(tmp_path, capsys):
    root = make_synthetic_polyps(tmp_path / "data", n_train=4, n_valid=1, n_test=1, size=(40, 48), progress=False)
    for path in (root / "valid").rglob("*.*"):
        path.unlink()
    code = cli.main(["train", "--data", str(root), "--out", str(tmp_path / "run"), *TINY, "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(root) in err, err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_broken_test_frame_found_at_the_end_keeps_the_training_and_says_how_to_score(tmp_path, capsys):
    root = make_synthetic_polyps(tmp_path / "data", n_train=4, n_valid=2, n_test=2, size=(40, 48), progress=False)
    broken = sorted((root / "test" / "images").iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated: read for the first time by the final test scoring
    out = tmp_path / "run"
    with_test = [arg for arg in TINY if arg != "--no-test"]
    assert cli.main(["train", "--data", str(root), "--out", str(out), *with_test, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "scoring the test split at full size stopped" in err and broken.name in err and "Traceback" not in err
    assert f"fcn-tutorial evaluate {out / 'best.pt'} --split test" in err
    assert (out / "best.pt").exists() and (out / "val.json").exists() and not (out / "test.json").exists()
    assert "scoring the test split at full size stopped" in (out / "train.log").read_text()


def test_an_empty_test_split_is_said_not_scored(data, tmp_path, monkeypatch, capsys):
    from torch.utils.data import Subset

    from fcn_tutorial.data import registry

    real_build, real_get = run.build_datasets, registry.get_dataset

    def no_test_frames(config, ctx=None):  # e.g. a small folder whose hash split left the test split empty
        datasets = real_build(config, ctx)
        return {**datasets, "test": Subset(datasets["test"], [])}

    def get_dataset(name, split, **options):
        dataset = real_get(name, split, **options)
        return Subset(dataset, []) if split == "test" else dataset

    monkeypatch.setattr(run, "build_datasets", no_test_frames)
    out = tmp_path / "run"
    run.train(tiny(data, out, epochs=1, test=True))
    assert "holds no frames: no test scores" in (out / "train.log").read_text()
    assert (out / "val.json").exists() and not (out / "test.json").exists()
    monkeypatch.setattr(registry, "get_dataset", get_dataset)
    capsys.readouterr()
    for command in ("evaluate", "threshold"):
        assert cli.main([command, str(out / "best.pt"), "--split", "test", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"the test split of {data} holds no frames" in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 1000}, "--width must be in"),
        ({"lr": "fast"}, "--lr must be a number"),
        ({"n_classes": 2.5}, "--n-classes must be a whole number"),
        ({"model": "fcn64s"}, "--model must be one of"),
        ({"monitor": 3}, "--monitor must be a string"),
    ],
)
def test_a_hostile_config_in_a_checkpoint_is_refused(change, message, finished, tmp_path, capsys):
    state = load_checkpoint(Path(finished.out) / "best.pt")
    state["config"].update(change)
    save_checkpoint(state, tmp_path / "hostile.pt")
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path / "hostile.pt", "cpu")
    assert cli.main(["evaluate", str(tmp_path / "hostile.pt"), "--no-progress"]) == 2
    assert "holds an invalid config" in capsys.readouterr().err


def test_ctrl_c_says_how_to_continue_and_a_run_stopped_before_its_first_checkpoint_resumes(data, tmp_path, monkeypatch):
    out, real = tmp_path / "run", engine.train_one_epoch
    calls = []

    def interrupted_in_epoch(epoch_to_stop):
        def train_one_epoch(*args, **kwargs):
            calls.append(kwargs["epoch"])
            if kwargs["epoch"] == epoch_to_stop:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        return train_one_epoch

    monkeypatch.setattr(engine, "train_one_epoch", interrupted_in_epoch(1))  # in the first epoch: no last.pt
    with pytest.raises(KeyboardInterrupt):
        run.train(tiny(data, out, epochs=3))
    log = (out / "train.log").read_text()
    assert f"no epoch had finished: continue with  fcn-tutorial train --resume {out}" in log
    assert not (out / "last.pt").exists()

    monkeypatch.setattr(engine, "train_one_epoch", interrupted_in_epoch(2))  # resumed: starts again, then stops
    with pytest.raises(KeyboardInterrupt):
        run.train(tiny(data, out, epochs=3), resume=True)
    log = (out / "train.log").read_text()
    assert "does not exist (no epoch had finished): starting" in log
    assert f"last.pt holds the last finished epoch: continue with  fcn-tutorial train --resume {out}" in log

    monkeypatch.setattr(engine, "train_one_epoch", real)
    history = run.train(tiny(data, out, epochs=3), resume=True)
    assert [row["epoch"] for row in history] == [1, 2, 3] and calls == [1, 1, 2]
    assert "run folder" in log
