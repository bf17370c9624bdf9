"""Downloads against a server on 127.0.0.1: progress, checksum, interruption, zip-slip, the CLI."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import threading
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_tutorial.cli import main
from fcn_tutorial.data import KvasirSEG, download_kvasir_seg
from fcn_tutorial.data.download import check_pairs_archive, download_file, extract_zip


def jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((12, 16), value, np.uint8)).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def kvasir_zip(extra: dict[str, bytes] | None = None) -> bytes:
    """A small archive shaped like the official one: Kvasir-SEG/{images,masks}/<id>.jpg and a json file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("cju0a", "cju0b", "cju0c"):
            archive.writestr(f"Kvasir-SEG/images/{name}.jpg", jpeg(120))
            archive.writestr(f"Kvasir-SEG/masks/{name}.jpg", jpeg(255))
        archive.writestr("Kvasir-SEG/kavsir_bboxes.json", b"{}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    """Serves files[path] (bytes; a str is a redirect there); '/cut/<path>' announces the full length but
    closes halfway; '/status/<code>' answers that HTTP error."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            cut = self.path.startswith("/cut/")
            data = files.get(self.path.removeprefix("/cut") if cut else self.path)
            if self.path.startswith("/status/"):
                self.send_error(int(self.path.removeprefix("/status/")))
                return
            if isinstance(data, str):  # a redirect to that address
                self.send_response(302)
                self.send_header("Location", data)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if cut else data)
            if cut:
                self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()


def test_download_kvasir_seg_normalises_the_layout(server, tmp_path, capsys):
    url, files = server
    files["/kvasir-seg.zip"] = kvasir_zip()
    digest = hashlib.sha256(files["/kvasir-seg.zip"]).hexdigest()
    root = download_kvasir_seg(tmp_path / "kvasir-seg", url=f"{url}/kvasir-seg.zip", sha256=digest, progress=True)
    assert sorted(os.listdir(root)) == ["images", "masks"]
    assert sorted(os.listdir(tmp_path)) == ["kvasir-seg"]  # no archive, no temporary folder
    assert "downloading kvasir-seg.zip" in capsys.readouterr().err  # the tqdm bar
    dataset = KvasirSEG(root, "train", split_dir=tmp_path / "splits")
    images = sum(len(KvasirSEG(root, s, split_dir=False)) for s in ("train", "val", "test"))
    assert images == 3
    if len(dataset):
        assert dataset[0][1].unique().tolist() == [1]


def test_download_does_nothing_when_the_data_is_there(server, tmp_path, monkeypatch):
    (tmp_path / "kvasir-seg" / "images").mkdir(parents=True)
    (tmp_path / "kvasir-seg" / "masks").mkdir()
    monkeypatch.setenv("FCN_TUTORIAL_DATA", str(tmp_path))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert download_kvasir_seg(url="http://127.0.0.1:9/unreachable.zip") == tmp_path / "kvasir-seg"
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_kvasir_download_true_uses_the_url_from_the_environment(server, tmp_path, monkeypatch):
    url, files = server
    files["/env.zip"] = kvasir_zip()
    monkeypatch.setenv("FCN_TUTORIAL_KVASIR_URL", f"{url}/env.zip")
    monkeypatch.setenv("FCN_TUTORIAL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FCN_TUTORIAL_CACHE", str(tmp_path / "cache"))
    datasets = [KvasirSEG(split=split, download=True) for split in ("train", "val", "test")]
    assert sum(len(d) for d in datasets) == 3
    assert (tmp_path / "data" / "kvasir-seg" / "images" / "cju0a.jpg").is_file()
    assert (tmp_path / "cache" / "kvasir-seg-splits" / "train.txt").is_file()


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    url, files = server
    files["/bad.zip"] = kvasir_zip()
    with pytest.raises(ValueError, match="corrupt: sha256"):
        download_kvasir_seg(tmp_path / "kvasir-seg", url=f"{url}/bad.zip", sha256="0" * 64)
    assert os.listdir(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(server, tmp_path):
    url, files = server
    files["/big.bin"] = os.urandom(300_000)
    with pytest.raises(OSError, match="download of .*big.bin"):
        download_file(f"{url}/cut/big.bin", tmp_path / "big.bin", progress=False)
    assert os.listdir(tmp_path) == []
    with pytest.raises(OSError, match="404"):
        download_file(f"{url}/missing.zip", tmp_path / "missing.zip", progress=False)
    assert os.listdir(tmp_path) == []


def test_only_https_or_loopback(tmp_path):
    with pytest.raises(ValueError, match="only https"):
        download_file("http://example.com/kvasir-seg.zip", tmp_path / "x.zip")
    with pytest.raises(ValueError, match="only https"):
        download_file("file:///etc/passwd", tmp_path / "x.zip")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("member", ["../evil.jpg", "/tmp/evil.jpg", "Kvasir-SEG/../../evil.jpg"])
def test_zip_slip_member_is_refused(server, tmp_path, member):
    url, files = server
    files["/slip.zip"] = kvasir_zip({member: b"gotcha"})
    with pytest.raises(ValueError, match="refusing member .*outside the target"):
        download_kvasir_seg(tmp_path / "data" / "kvasir-seg", url=f"{url}/slip.zip", progress=False)
    assert not list(tmp_path.rglob("evil.jpg")) and not Path("/tmp/evil.jpg").exists()
    assert os.listdir(tmp_path / "data") == []


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    archive.write_bytes(kvasir_zip())
    with zipfile.ZipFile(archive, "a") as file:
        info = zipfile.ZipInfo("Kvasir-SEG/images/link.jpg")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        file.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_structural_check_of_the_archive(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"this is not a zip")
    with pytest.raises(ValueError, match="not a zip archive"):
        check_pairs_archive(tmp_path / "junk.zip")
    (tmp_path / "unpaired.zip").write_bytes(kvasir_zip({"Kvasir-SEG/images/lonely.jpg": jpeg(1)}))
    with pytest.raises(ValueError, match="1 files have no partner.*lonely.jpg"):
        check_pairs_archive(tmp_path / "unpaired.zip")
    (tmp_path / "good.zip").write_bytes(kvasir_zip())
    assert check_pairs_archive(tmp_path / "good.zip") == 3


def test_cli_download(server, tmp_path, capsys):
    url, files = server
    files["/cli.zip"] = kvasir_zip()
    assert main(["data", "download", "kvasir-seg", "--root", str(tmp_path / "k"), "--url", f"{url}/cli.zip"]) == 0
    assert (tmp_path / "k" / "masks" / "cju0c.jpg").is_file()


def test_polyps912_from_google_drive_is_unpacked_into_the_cvc912_layout(tmp_path, monkeypatch):
    gdown = pytest.importorskip("gdown")
    from fcn_tutorial.data import Polyps912, download_polyps912, make_synthetic_polyps

    source = make_synthetic_polyps(tmp_path / "polyps_split7", 2, 1, 1, size=(40, 48))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as file:
        for path in sorted(source.rglob("*.*")):
            file.write(path, Path("polyps_split7") / path.relative_to(source))
    requests = []

    def fake_download(*, id, output, quiet):  # gdown's own network code is not ours to test
        requests.append(id)
        Path(output).write_bytes(archive.getvalue())
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.setenv("FCN_TUTORIAL_POLYPS912_ID", "drive-id-123")
    root = download_polyps912(root=tmp_path / "data" / "polyps912", progress=False)
    assert requests == ["drive-id-123"] and sorted(os.listdir(root)) == ["test", "train", "valid"]
    assert os.listdir(tmp_path / "data") == ["polyps912"]
    assert len(Polyps912(root, "train")) == 2 and len(Polyps912(root, "valid")) == 1


# --------------------------------------------------------------------------------------------
# A user's own files, redirects, failures: issue #9


def test_a_users_own_archive_is_never_overwritten_or_removed(server, tmp_path):
    url, files = server
    files["/own.zip"] = kvasir_zip()
    mine = tmp_path / "kvasir-seg.zip"
    mine.write_bytes(b"my own notes, not a download")
    download_kvasir_seg(tmp_path / "kvasir-seg", url=f"{url}/own.zip", progress=False)
    assert mine.read_bytes() == b"my own notes, not a download"
    assert sorted(os.listdir(tmp_path)) == ["kvasir-seg", "kvasir-seg.zip"]

    with pytest.raises(OSError, match="HTTP 404"):  # a failed download leaves it alone too
        download_kvasir_seg(tmp_path / "other" / "kvasir-seg", url=f"{url}/missing.zip", progress=False)
    assert os.listdir(tmp_path / "other") == []


def test_keep_archive_never_overwrites(server, tmp_path):
    url, files = server
    files["/keep.zip"] = kvasir_zip()
    download_kvasir_seg(tmp_path / "a" / "kvasir-seg", url=f"{url}/keep.zip", progress=False, keep_archive=True)
    assert (tmp_path / "a" / "kvasir-seg.zip").read_bytes() == files["/keep.zip"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "kvasir-seg.zip").write_bytes(b"mine")
    with pytest.warns(UserWarning, match="kvasir-seg.zip exists and is left alone"):
        download_kvasir_seg(tmp_path / "b" / "kvasir-seg", url=f"{url}/keep.zip", progress=False, keep_archive=True)
    assert (tmp_path / "b" / "kvasir-seg.zip").read_bytes() == b"mine"
    kept = [name for name in os.listdir(tmp_path / "b") if name not in ("kvasir-seg", "kvasir-seg.zip")]
    assert len(kept) == 1 and (tmp_path / "b" / kept[0]).read_bytes() == files["/keep.zip"]


def test_every_redirect_hop_is_checked(server, tmp_path):
    url, files = server
    files["/data.zip"] = kvasir_zip()
    files["/hop1"], files["/hop2"] = f"{url}/hop2", f"{url}/data.zip"  # loopback -> loopback: followed
    assert download_file(f"{url}/hop1", tmp_path / "ok.zip", progress=False).read_bytes() == files["/data.zip"]
    for target in ("http://example.com/kvasir-seg.zip", "file:///etc/passwd", "ftp://example.com/x.zip"):
        files["/bad1"], files["/bad2"] = f"{url}/bad2", target  # the second hop leaves https
        with pytest.raises(ValueError, match=f"refusing the redirect from {url}/bad2 to {target}: only https"):
            download_file(f"{url}/bad1", tmp_path / "bad.zip", progress=False, timeout=5)
    assert os.listdir(tmp_path) == ["ok.zip"]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_http_errors_and_cut_downloads_are_one_clean_line(server, tmp_path):
    url, files = server
    files["/half.bin"] = os.urandom(300_000)
    cases = {
        f"{url}/missing.zip": "failed: HTTP 404 Not Found",
        f"{url}/status/500": "failed: HTTP 500 Internal Server Error",
        f"{url}/status/403": "failed: HTTP 403 Forbidden",
        f"{url}/cut/half.bin": "failed: it stopped after 150,000 of 300,000 bytes; try again",
        f"http://127.0.0.1:{_free_port()}/x.zip": "failed: .*[Cc]onnection refused",
    }
    for address, message in cases.items():
        with pytest.raises(OSError, match=f"^download of {address} {message}") as error:
            download_file(address, tmp_path / "x.bin", progress=False, timeout=5)
        assert "\n" not in str(error.value) and "<" not in str(error.value)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Zip bombs: refused from the archive's directory, before anything is written


def bomb(size: int = 2_000_000, extra: bytes | None = None) -> bytes:
    """``size`` zeros deflated to a few KB (ratio ~500), optionally inside a Kvasir-shaped archive."""
    buffer = io.BytesIO(extra or b"")
    with zipfile.ZipFile(buffer, "a" if extra else "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Kvasir-SEG/zeros.bin", bytes(size))
    return buffer.getvalue()


@pytest.fixture
def no_extraction(monkeypatch):
    """Fail the test if any member is unpacked or decompressed."""
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda *a, **k: pytest.fail("extracted a member"))
    monkeypatch.setattr(zipfile.ZipFile, "testzip", lambda *a, **k: pytest.fail("decompressed a member"))


def test_compression_ratio_limit(tmp_path, no_extraction):
    (tmp_path / "bomb.zip").write_bytes(bomb())
    with pytest.raises(
        ValueError,
        match=r"bomb.zip would unpack [\d,]+ compressed bytes to 2,000,000, a ratio "
        r"above the limit of 100 .*FCN_TUTORIAL_MAX_ZIP_RATIO",
    ):
        extract_zip(tmp_path / "bomb.zip", tmp_path / "out")
    with pytest.raises(ValueError, match="ratio above the limit of 100"):
        check_pairs_archive(tmp_path / "bomb.zip")
    assert os.listdir(tmp_path) == ["bomb.zip"]


def test_total_size_limit(tmp_path, monkeypatch, no_extraction):
    (tmp_path / "k.zip").write_bytes(kvasir_zip())
    with pytest.raises(
        ValueError,
        match=r"k.zip would unpack to [\d,]+ bytes, more than the limit of 1,000; "
        r".*FCN_TUTORIAL_MAX_UNPACKED",
    ):
        extract_zip(tmp_path / "k.zip", tmp_path / "out", max_unpacked=1000)
    monkeypatch.setenv("FCN_TUTORIAL_MAX_UNPACKED", "1000")
    with pytest.raises(ValueError, match="more than the limit of 1,000"):
        extract_zip(tmp_path / "k.zip", tmp_path / "out")
    assert os.listdir(tmp_path) == ["k.zip"]


def test_limits_can_be_raised(tmp_path, monkeypatch):
    (tmp_path / "bomb.zip").write_bytes(bomb())
    monkeypatch.setenv("FCN_TUTORIAL_MAX_ZIP_RATIO", "10000")
    extract_zip(tmp_path / "bomb.zip", tmp_path / "out")
    assert (tmp_path / "out" / "Kvasir-SEG" / "zeros.bin").stat().st_size == 2_000_000
    for name, bad in (
        ("FCN_TUTORIAL_MAX_ZIP_RATIO", "lots"),
        ("FCN_TUTORIAL_MAX_UNPACKED", "-1"),
        ("FCN_TUTORIAL_MAX_UNPACKED", "1.5"),
        ("FCN_TUTORIAL_MAX_ZIP_RATIO", "inf"),
    ):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError, match=f"{name}='{bad}' is not a positive"):
            extract_zip(tmp_path / "bomb.zip", tmp_path / "again")
        monkeypatch.delenv(name)


def test_a_download_that_is_a_zip_bomb_leaves_nothing(server, tmp_path):
    url, files = server
    files["/bomb.zip"] = bomb(extra=kvasir_zip())
    with pytest.raises(ValueError, match="ratio above the limit"):
        download_kvasir_seg(tmp_path / "kvasir-seg", url=f"{url}/bomb.zip", progress=False)
    assert os.listdir(tmp_path) == []


def test_a_directory_that_lies_about_sizes_writes_no_more_than_it_claims(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.bin", b"A" * 100_000)
    data = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central "uncompressed size"
        at = data.index(signature) + offset
        data[at : at + 4] = (10).to_bytes(4, "little")
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="liar.zip is corrupt"):
        extract_zip(tmp_path / "liar.zip", tmp_path / "out")
    assert os.listdir(tmp_path) == ["liar.zip"]


# --------------------------------------------------------------------------------------------
# CVC-912 from the Google Drive id that the 2017 tutorial names (#11)


@pytest.fixture
def drive(server, monkeypatch, tmp_path_factory):
    """A loopback server standing in for Google Drive: gdown fetches /drive/<id> from it."""
    gdown = pytest.importorskip("gdown")
    from fcn_tutorial.data import make_synthetic_polyps

    url, files = server
    source = make_synthetic_polyps(tmp_path_factory.mktemp("drive") / "p", 2, 1, 1, size=(40, 48))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as file:
        for path in sorted(source.rglob("*.*")):
            file.write(path, Path("polyps_split7") / path.relative_to(source))
    files["/drive/0B_60jvsCt1hhZWNfcW4wbHE5N3M"] = archive.getvalue()
    requests = []

    def fake_download(*, id, output, quiet):  # gdown's own network code is not ours to test
        requests.append(id)
        return str(download_file(f"{url}/drive/{id}", output, progress=False))

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.delenv("FCN_TUTORIAL_POLYPS912_ID", raising=False)
    return requests


def test_polyps912_downloads_with_no_id(drive, tmp_path, capsys):
    from fcn_tutorial.data import Polyps912
    from fcn_tutorial.data.download import POLYPS912_DRIVE_ID, download_polyps912

    assert POLYPS912_DRIVE_ID == "0B_60jvsCt1hhZWNfcW4wbHE5N3M"
    assert "0B_60jvsCt1hhZWNfcW4wbHE5N3M" in download_polyps912.__doc__  # says where the id comes from
    assert main(["data", "download", "polyps912", "--root", str(tmp_path / "p")]) == 0
    assert drive == [POLYPS912_DRIVE_ID] and len(Polyps912(tmp_path / "p", "train")) == 2
    assert os.listdir(tmp_path) == ["p"]


def test_train_data_polyps912_download_works_with_no_id(drive, tmp_path, monkeypatch):
    monkeypatch.setenv("FCN_TUTORIAL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FCN_TUTORIAL_CACHE", str(tmp_path / "cache"))
    code = main(
        [
            "train",
            "--data",
            "polyps912",
            "--download",
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--width",
            "0.125",
            "--batch-size",
            "2",
            "--no-test",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 0 and drive == ["0B_60jvsCt1hhZWNfcW4wbHE5N3M"]
    assert (tmp_path / "data" / "polyps912" / "train" / "images").is_dir()
    assert (tmp_path / "run" / "last.pt").is_file()


def test_a_failed_drive_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    gdown = pytest.importorskip("gdown")
    from fcn_tutorial.data.download import download_polyps912

    def refuse(*, id, output, quiet):
        raise gdown.exceptions.FileURLRetrievalError("Failed to retrieve file url:\n\n\tToo many users have viewed")

    monkeypatch.setattr(gdown, "download", refuse)
    with pytest.raises(
        OSError,
        match="^download of Google Drive file 0B_60jvsCt1hhZWNfcW4wbHE5N3M failed: Failed to "
        "retrieve file url: Too many users have viewed$",
    ):
        download_polyps912(root=tmp_path / "polyps912", progress=False)
    assert os.listdir(tmp_path) == []


def test_encrypted_or_unknown_members_are_refused_before_unpacking(tmp_path, no_extraction):
    for name, flag_bits, method in (("locked.zip", 0x1, zipfile.ZIP_STORED), ("odd.zip", 0, 99)):
        buffer = io.BytesIO(kvasir_zip())
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.writestr("Kvasir-SEG/secret.txt", b"x")
        data = bytearray(buffer.getvalue())
        at = data.rindex(b"PK\x01\x02")  # the central directory entry of the last member
        data[at + 8 : at + 10] = flag_bits.to_bytes(2, "little")
        data[at + 10 : at + 12] = method.to_bytes(2, "little")
        (tmp_path / name).write_bytes(bytes(data))
        for check in (lambda p: extract_zip(p, tmp_path / "out"), check_pairs_archive):
            with pytest.raises(
                ValueError,
                match=rf"{name}: member 'Kvasir-SEG/secret.txt' (is encrypted|uses "
                rf"compression method 99)",
            ):
                check(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["locked.zip", "odd.zip"]


def test_a_root_that_is_a_file_or_holds_other_files_is_refused_before_downloading(tmp_path, monkeypatch):
    from fcn_tutorial.data.download import download_polyps912

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", lambda *a, **k: pytest.fail("downloaded"))
    (tmp_path / "file").write_text("mine")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    for download in (download_kvasir_seg, lambda root: download_polyps912(root=root)):
        with pytest.raises(ValueError, match="file is a file; pass a folder"):
            download(tmp_path / "file")
        with pytest.raises(ValueError, match="full exists but has no .*; move it away or pass another root"):
            download(tmp_path / "full")
    assert sorted(os.listdir(tmp_path)) == ["file", "full"] and os.listdir(tmp_path / "full") == ["notes.txt"]
