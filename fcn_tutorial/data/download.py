"""Fetching data sets: downloads that leave no half file behind, and archives unpacked safely.

Where files live:

* ``data_home()``: where data sets are looked for and downloaded to, ``$FCN_TUTORIAL_DATA`` or
  ``~/.cache/fcn-tutorial`` (e.g. ``<data>/kvasir-seg/{images,masks}``). It may be a shared,
  read-only folder: when the data set is already there nothing is written to it.
* ``cache_home()``: where the package writes what it generates (split files, the synthetic set),
  ``$FCN_TUTORIAL_CACHE`` or ``~/.cache/fcn-tutorial``.

A download (:func:`download_file`) streams into a temporary file beside its target with a tqdm
progress bar, checks the size and (when known) the sha256, and only then renames the file into
place, so an interrupted or corrupt download leaves nothing behind. :func:`extract_zip` refuses any
member that would land outside the target folder (``../x``, absolute paths: "zip-slip") and symbolic
links, and also unpacks into a temporary folder that is renamed when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import shutil
import stat
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

__all__ = [
    "KVASIR_URL",
    "KVASIR_SHA256",
    "data_home",
    "cache_home",
    "download_file",
    "check_pairs_archive",
    "extract_zip",
    "download_kvasir_seg",
    "download_polyps912",
    "polyps912_instructions",
]

KVASIR_URL = "https://datasets.simula.no/downloads/kvasir-seg.zip"
KVASIR_SHA256: str | None = None  # not published by the authors; pass sha256= or set FCN_TUTORIAL_KVASIR_SHA256
KVASIR_URL_ENV = "FCN_TUTORIAL_KVASIR_URL"
KVASIR_SHA256_ENV = "FCN_TUTORIAL_KVASIR_SHA256"
POLYPS912_ID_ENV = "FCN_TUTORIAL_POLYPS912_ID"


def data_home() -> Path:
    """Where data sets are found and downloaded: ``$FCN_TUTORIAL_DATA`` or ``~/.cache/fcn-tutorial``."""
    return Path(os.environ.get("FCN_TUTORIAL_DATA") or Path.home() / ".cache" / "fcn-tutorial").expanduser()


def cache_home() -> Path:
    """Where generated files go: ``$FCN_TUTORIAL_CACHE`` or ``~/.cache/fcn-tutorial``."""
    return Path(os.environ.get("FCN_TUTORIAL_CACHE") or Path.home() / ".cache" / "fcn-tutorial").expanduser()


# --------------------------------------------------------------------------------------------
# Downloading one file


def download_file(url: str, path: str | os.PathLike, *, sha256: str | None = None, progress: bool | None = True,
                  timeout: float = 60.0, chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` to ``path`` atomically: all of it, verified, or nothing.

    Only ``https://`` addresses are fetched (plain ``http://`` only from the loopback interface, for
    tests). Raises ``OSError`` when the connection fails or ends before ``Content-Length`` bytes,
    ``ValueError`` when the sha256 differs from ``sha256``; in both cases no file is left at ``path``
    (nor any temporary file).
    """
    _check_url(url)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fcn-tutorial"})
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.length  # Content-Length, or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {path.name}",
                      disable=_disabled(progress)) as bar:
                while chunk := response.read(chunk_size):
                    file.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise OSError(f"download of {url} stopped after {received} of {total} bytes")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(f"download of {url} is corrupt: sha256 {digest.hexdigest()}, expected {sha256.lower()}")
        os.replace(temporary, path)
    except (OSError, http.client.HTTPException) as error:  # e.g. the server closed the connection early
        Path(temporary).unlink(missing_ok=True)
        if str(error).startswith("download of"):
            raise
        raise OSError(f"download of {url} failed: {error!r}") from error
    except BaseException:  # a wrong checksum, KeyboardInterrupt...: never leave a partial file
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    raise ValueError(f"refusing to download {url}: only https:// addresses (or http:// on 127.0.0.1) are allowed")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _disabled(progress: bool | None) -> bool | None:
    return None if progress is None else not progress  # tqdm: None hides the bar when not on a terminal


# --------------------------------------------------------------------------------------------
# Checking and unpacking archives


def check_pairs_archive(archive: str | os.PathLike, *, images: str = "images", masks: str = "masks") -> int:
    """Check that ``archive`` is a readable zip whose ``images/`` and ``masks/`` files pair by name.

    Returns the number of pairs. Raises ``ValueError`` naming the archive and the problem: not a zip,
    a corrupt member (CRC), no pairs, or files without their partner.
    """
    archive = Path(archive)
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"{archive} is not a zip archive")
    try:
        with zipfile.ZipFile(archive) as file:
            bad = file.testzip()
            names = [PurePosixPath(info.filename) for info in file.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{archive} is not a readable zip archive ({error})") from None
    if bad is not None:
        raise ValueError(f"{archive} is corrupt: member {bad} fails its CRC check")
    found = {images: {}, masks: {}}
    for name in names:
        if len(name.parts) >= 2 and name.parts[-2] in found and not name.name.startswith("."):
            found[name.parts[-2]][(name.parent.parent, name.stem)] = name
    image_keys, mask_keys = set(found[images]), set(found[masks])
    if not image_keys & mask_keys:
        raise ValueError(f"{archive} holds no {images}/ and {masks}/ files of the same names")
    unpaired = sorted(str(found[images][key]) for key in image_keys - mask_keys)
    unpaired += sorted(str(found[masks][key]) for key in mask_keys - image_keys)
    if unpaired:
        raise ValueError(f"{archive}: {len(unpaired)} files have no partner, e.g. {', '.join(unpaired[:3])}")
    return len(image_keys)


def extract_zip(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Unpack ``archive`` into the new folder ``target``, refusing unsafe members.

    Every member must stay inside ``target`` (no absolute path, no ``..``, no drive letter) and be a
    plain file or folder (no symbolic link); otherwise ``ValueError`` names the member and nothing
    is extracted. Unpacks into a temporary folder first, renamed to ``target`` when complete.
    """
    archive, target = Path(archive), Path(target)
    with zipfile.ZipFile(archive) as file:
        members = file.infolist()
        for info in members:
            _check_member(archive, info)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
        try:
            root = temporary.resolve()
            for info in members:
                destination = (temporary / info.filename).resolve()
                if root not in destination.parents and destination != root:  # second guard, after resolving
                    raise ValueError(f"{archive}: member {info.filename!r} would be written outside {target}")
                file.extract(info, temporary)
            os.replace(temporary, target)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return target


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ValueError(f"{archive}: refusing member {info.filename!r}, a path outside the target folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"{archive}: refusing member {info.filename!r}, a symbolic link")


def _find_folder_with(root: Path, children: tuple[str, ...]) -> Path:
    """The shallowest folder under ``root`` (``root`` included) that holds all of ``children``."""
    candidates = [root] + sorted((path for path in root.rglob("*") if path.is_dir()), key=lambda p: len(p.parts))
    for folder in candidates:
        if all((folder / child).is_dir() for child in children):
            return folder
    raise ValueError(f"the archive has no folder holding {', '.join(c + '/' for c in children)}")


# --------------------------------------------------------------------------------------------
# The data sets


def download_kvasir_seg(root: str | os.PathLike | None = None, *, url: str | None = None, sha256: str | None = None,
                        progress: bool | None = True, keep_archive: bool = False) -> Path:
    """Kvasir-SEG in ``root/{images,masks}`` (default ``<data>/kvasir-seg``), downloaded if missing.

    Nothing is downloaded or written when ``root`` already holds ``images/`` and ``masks/``. Otherwise
    the official archive (``url``, ``$FCN_TUTORIAL_KVASIR_URL`` or :data:`KVASIR_URL`, about 46 MB) is
    downloaded beside ``root``, checked (``sha256`` or ``$FCN_TUTORIAL_KVASIR_SHA256`` when given; a
    readable zip of ``images/`` and ``masks/`` pairs in any case), unpacked safely, and its
    ``Kvasir-SEG/images`` and ``Kvasir-SEG/masks`` moved to ``root``.
    """
    root = Path(root) if root is not None else data_home() / "kvasir-seg"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return root
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} exists but has no images/ and masks/ folders; move it away or pass another root")
    url = url or os.environ.get(KVASIR_URL_ENV) or KVASIR_URL
    sha256 = sha256 or os.environ.get(KVASIR_SHA256_ENV) or KVASIR_SHA256
    archive = root.parent / f"{root.name}.zip"
    download_file(url, archive, sha256=sha256, progress=progress)
    try:
        check_pairs_archive(archive)
        _unpack_into(archive, root, ("images", "masks"))
    finally:
        if not keep_archive:
            archive.unlink(missing_ok=True)
    return root


def polyps912_instructions(root: Path) -> str:
    """How to get CVC-912 (``polyps_split7.zip``) into ``root``, for error messages and docs."""
    return (f"CVC-912 is shared as polyps_split7.zip from Google Drive by the 2017 tutorial's authors; the file id "
            f"is not published with this package. With the id: `fcn-tutorial data download polyps912 --gdrive-id ID` "
            f"(or set {POLYPS912_ID_ENV}; needs `pip install 'fcn-tutorial[gdrive]'`). By hand: download "
            f"polyps_split7.zip, unzip it, and move the folder holding train/, valid/ and test/ to {root} "
            f"(so that {root}/train/images/*.bmp and {root}/train/masks2/*.tif exist).")


def download_polyps912(file_id: str | None = None, root: str | os.PathLike | None = None, *,
                       progress: bool | None = True) -> Path:
    """CVC-912 in ``root`` (default ``<data>/polyps912``), fetched from Google Drive with ``gdown``.

    ``file_id`` (or ``$FCN_TUTORIAL_POLYPS912_ID``) is the Drive id of ``polyps_split7.zip``; we do not
    know it, so it must be given. Needs the optional dependency ``gdown``
    (``pip install 'fcn-tutorial[gdrive]'``). The archive is unpacked safely and its folder holding
    ``train/``, ``valid/`` and ``test/`` becomes ``root``.
    """
    root = Path(root) if root is not None else data_home() / "polyps912"
    if (root / "train" / "images").is_dir():
        return root
    file_id = file_id or os.environ.get(POLYPS912_ID_ENV)
    if not file_id:
        raise ValueError("no Google Drive file id for polyps_split7.zip. " + polyps912_instructions(root))
    try:
        import gdown
    except ImportError:
        raise ValueError("downloading from Google Drive needs gdown: pip install 'fcn-tutorial[gdrive]'. "
                         + polyps912_instructions(root)) from None
    root.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=root.parent, prefix=".polyps_split7.", suffix=".zip.part")
    os.close(handle)
    try:
        if gdown.download(id=file_id, output=temporary, quiet=progress is False) is None:
            raise OSError(f"gdown could not download Google Drive file {file_id}")
        if not zipfile.is_zipfile(temporary):
            raise ValueError(f"Google Drive file {file_id} is not a zip archive (is the id that of polyps_split7.zip?)")
        _unpack_into(Path(temporary), root, ("train", "valid", "test"))
    finally:
        Path(temporary).unlink(missing_ok=True)
    return root


def _unpack_into(archive: Path, root: Path, children: tuple[str, ...]) -> None:
    """Unpack ``archive`` and make its folder holding ``children`` (e.g. ``Kvasir-SEG/``) ``root``."""
    unpacked = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.", suffix=".unpacked"))
    try:
        extract_zip(archive, unpacked / "all")
        found = _find_folder_with(unpacked / "all", children)
        staged = unpacked / "staged"
        staged.mkdir()
        for child in children:
            os.replace(found / child, staged / child)
        if root.exists():
            root.rmdir()  # empty (checked by the caller)
        os.replace(staged, root)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
