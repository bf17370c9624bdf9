"""Downloads against a server on 127.0.0.1: progress, checksum, interruption, zip-slip, the CLI."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import threading
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
    """Serves FILES[path]; '/cut/<path>' announces the full length but closes halfway."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            cut = self.path.startswith("/cut/")
            data = files.get(self.path.removeprefix("/cut") if cut else self.path)
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
