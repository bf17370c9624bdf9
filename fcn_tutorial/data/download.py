"""Fetching data sets: downloads that leave no half file behind, and archives unpacked safely.

Where files live:

* ``data_home()``: where data sets are looked for and downloaded to, ``$FCN_TUTORIAL_DATA`` or
  ``~/.cache/fcn-tutorial`` (e.g. ``<data>/kvasir-seg/{images,masks}``). It may be a shared,
  read-only folder: when the data set is already there nothing is written to it.
* ``cache_home()``: where the package writes what it generates (split files, the synthetic set),
  ``$FCN_TUTORIAL_CACHE`` or ``~/.cache/fcn-tutorial``.

A download (:func:`download_file`) streams into a temporary file of its own beside its target with
a tqdm progress bar, checks the size and (when known) the sha256, and only then renames the file
into place, so an interrupted or corrupt download leaves nothing behind, and a file of yours is
never overwritten or removed. Only ``https://`` is fetched, and every redirect is checked again.
A failed download is one ``OSError`` line: the address and the HTTP status, or how far it came.

:func:`extract_zip` refuses, from the archive's directory and before writing anything, any member
that would land outside the target folder (``../x``, absolute paths: "zip-slip"), symbolic links,
encrypted members, and zip bombs: more than ``$FCN_TUTORIAL_MAX_UNPACKED`` bytes in all (default
4 GB) or a compression ratio above ``$FCN_TUTORIAL_MAX_ZIP_RATIO`` (default 100). It unpacks into a
temporary folder that is renamed when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import math
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .decode import display_path

__all__ = [
    "KVASIR_URL",
    "KVASIR_SHA256",
    "POLYPS912_DRIVE_ID",
    "data_home",
    "cache_home",
    "download_file",
    "check_pairs_archive",
    "check_archive_limits",
    "archive_limits",
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
# polyps_split7.zip, as named by the 2017 tutorial's set-up script (lisa-lab/DeepLearningTutorials)
POLYPS912_DRIVE_ID = "0B_60jvsCt1hhZWNfcW4wbHE5N3M"
MAX_UNPACKED_ENV = "FCN_TUTORIAL_MAX_UNPACKED"
DEFAULT_MAX_UNPACKED = 4_000_000_000  # bytes; Kvasir-SEG unpacks to ~50 MB, CVC-912 to ~1 GB (by its frame sizes)
MAX_RATIO_ENV = "FCN_TUTORIAL_MAX_ZIP_RATIO"
DEFAULT_MAX_RATIO = 100.0


def data_home() -> Path:
    """Where data sets are found and downloaded: ``$FCN_TUTORIAL_DATA`` or ``~/.cache/fcn-tutorial``."""
    return Path(os.environ.get("FCN_TUTORIAL_DATA") or Path.home() / ".cache" / "fcn-tutorial").expanduser()


def cache_home() -> Path:
    """Where generated files go: ``$FCN_TUTORIAL_CACHE`` or ``~/.cache/fcn-tutorial``."""
    return Path(os.environ.get("FCN_TUTORIAL_CACHE") or Path.home() / ".cache" / "fcn-tutorial").expanduser()


# --------------------------------------------------------------------------------------------
# Downloading one file


def download_file(
    url: str,
    path: str | os.PathLike,
    *,
    sha256: str | None = None,
    progress: bool | None = True,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``path`` atomically: all of it, verified, or nothing.

    Only ``https://`` addresses are fetched (plain ``http://`` only from the loopback interface, for
    tests), and every redirect is checked by the same rule. Raises ``OSError`` with one line (the
    address and the HTTP status, or how the connection failed or how many bytes came) when the
    download fails, ``ValueError`` when the address is refused or the sha256 differs from ``sha256``;
    in every case no file is left at ``path`` (nor any temporary file).
    """
    _check_url(url)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fcn-tutorial"})
        opener = urllib.request.build_opener(_CheckedRedirects)
        with os.fdopen(handle, "wb") as file, opener.open(request, timeout=timeout) as response:
            total = response.length  # Content-Length, or None
            shown = PurePosixPath(urllib.parse.urlsplit(url).path).name or path.name
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"downloading {shown}",
                disable=_disabled(progress),
            ) as bar:
                try:
                    while chunk := response.read(chunk_size):
                        file.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as error:
                    raise _Failed(f"the connection broke after {received:,} bytes ({_describe(error)})") from None
            if total is not None and received != total:
                raise _Failed(f"it stopped after {received:,} of {total:,} bytes")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(f"download of {url} is corrupt: sha256 {digest.hexdigest()}, expected {sha256.lower()}")
        os.replace(temporary, path)
    except _Failed as error:
        Path(temporary).unlink(missing_ok=True)
        raise OSError(f"download of {url} failed: {error}; try again") from None
    except (OSError, http.client.HTTPException) as error:  # refused, not found, timed out...
        Path(temporary).unlink(missing_ok=True)
        raise OSError(f"download of {url} failed: {_describe(error)}") from None
    except BaseException:  # a wrong checksum, a refused redirect, KeyboardInterrupt...: never leave a partial file
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


class _Failed(Exception):
    """A download that started but did not finish (said once, as ``OSError``, by :func:`download_file`)."""


def _describe(error: BaseException) -> str:
    """One line for a failed request: 'HTTP 404 Not Found', 'timed out', 'Connection refused'..."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):  # wraps the socket's error, or says why in words
        if not isinstance(error.reason, BaseException):
            return str(error.reason)
        error = error.reason
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = " ".join(str(error).split())  # one line, whatever the message's layout
    return text[:300] if text else type(error).__name__


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an address that :func:`_check_url` accepts, hop by hop."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("Location") or headers.get("URI")
        if location:
            try:
                _check_url(urllib.parse.urljoin(req.full_url, location), redirected_from=req.full_url)
            except ValueError:
                fp.close()
                raise
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _check_url(url: str, *, redirected_from: str | None = None) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    what = f"the redirect from {redirected_from} to {url}" if redirected_from else f"to download {url}"
    raise ValueError(f"refusing {what}: only https:// addresses (or http:// on 127.0.0.1) are allowed")


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
            check_archive_limits(archive, file.infolist())  # before testzip decompresses every member
            for info in file.infolist():
                _check_member(archive, info)
            bad = file.testzip()
            names = [PurePosixPath(info.filename) for info in file.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as error:
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


def extract_zip(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    max_unpacked: int | None = None,
    max_ratio: float | None = None,
) -> Path:
    """Unpack ``archive`` into the new folder ``target``, refusing unsafe members and zip bombs.

    Every member must stay inside ``target`` (no absolute path, no ``..``, no drive letter) and be a
    plain file or folder (no symbolic link). The sizes in the archive's directory must stay within
    ``max_unpacked`` bytes in all and ``max_ratio`` times the compressed size (see
    :func:`check_archive_limits`). All of this is checked before anything is written; otherwise
    ``ValueError`` names the member or the limit and nothing is extracted. Unpacks into a temporary
    folder first, renamed to ``target`` when complete.
    """
    archive, target = Path(archive), Path(target)
    try:
        file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{archive} is not a readable zip archive ({error})") from None
    with file:
        members = file.infolist()
        check_archive_limits(archive, members, max_unpacked=max_unpacked, max_ratio=max_ratio)
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
                file.extract(info, temporary)  # never more than info.file_size bytes, CRC-checked
            os.replace(temporary, target)
        except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as error:
            shutil.rmtree(temporary, ignore_errors=True)
            raise ValueError(f"{archive} is corrupt ({error})") from None
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return target


def archive_limits() -> tuple[int, float]:
    """The zip-bomb limits of :func:`extract_zip`: ``(max_unpacked, max_ratio)``.

    ``$FCN_TUTORIAL_MAX_UNPACKED`` bytes (default 4 GB) and ``$FCN_TUTORIAL_MAX_ZIP_RATIO`` (default 100).
    """
    return (
        int(_positive_env(MAX_UNPACKED_ENV, DEFAULT_MAX_UNPACKED, whole=True)),
        _positive_env(MAX_RATIO_ENV, DEFAULT_MAX_RATIO, whole=False),
    )


def check_archive_limits(
    archive: Path, members: list[zipfile.ZipInfo], *, max_unpacked: int | None = None, max_ratio: float | None = None
) -> None:
    """Refuse a zip bomb from the archive's directory alone, before a byte is unpacked.

    ``ValueError`` when the members' sizes add up to more than ``max_unpacked`` bytes, or to more
    than ``max_ratio`` times their compressed sizes (ordinary data compresses 1 to 10 times; a zip
    bomb, 1000 times). Defaults: :func:`archive_limits`.
    """
    default_unpacked, default_ratio = archive_limits()
    max_unpacked = default_unpacked if max_unpacked is None else max_unpacked
    max_ratio = default_ratio if max_ratio is None else max_ratio
    unpacked = sum(info.file_size for info in members)
    packed = sum(info.compress_size for info in members)
    if unpacked > max_unpacked:
        raise ValueError(
            f"{archive} would unpack to {unpacked:,} bytes, more than the limit of {max_unpacked:,}; "
            f"if you trust it, raise the limit with {MAX_UNPACKED_ENV}"
        )
    if unpacked > max_ratio * max(packed, 1):
        raise ValueError(
            f"{archive} would unpack {packed:,} compressed bytes to {unpacked:,}, a ratio above the "
            f"limit of {max_ratio:g} (a zip bomb?); if you trust it, raise the limit with {MAX_RATIO_ENV}"
        )


def _positive_env(name: str, default: float, *, whole: bool) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        number = 0
    if not (number > 0 and math.isfinite(number)):
        kind = "whole number" if whole else "number"
        raise ValueError(f"{name}={value!r} is not a positive {kind}; unset it for the default {default:g}")
    return number


_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ValueError(f"{archive}: refusing member {info.filename!r}, a path outside the target folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"{archive}: refusing member {info.filename!r}, a symbolic link")
    if info.flag_bits & 0x1:
        raise ValueError(f"{archive}: member {info.filename!r} is encrypted; unpack the archive yourself")
    if info.compress_type not in _COMPRESSIONS:
        raise ValueError(
            f"{archive}: member {info.filename!r} uses compression method {info.compress_type}, "
            f"which Python's zipfile cannot unpack; unpack the archive yourself"
        )


def _find_folder_with(root: Path, children: tuple[str, ...]) -> Path:
    """The shallowest folder under ``root`` (``root`` included) that holds all of ``children``."""
    candidates = [root] + sorted((path for path in root.rglob("*") if path.is_dir()), key=lambda p: len(p.parts))
    for folder in candidates:
        if all((folder / child).is_dir() for child in children):
            return folder
    raise ValueError(f"the archive has no folder holding {', '.join(c + '/' for c in children)}")


# --------------------------------------------------------------------------------------------
# The data sets


def download_kvasir_seg(
    root: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool | None = True,
    keep_archive: bool = False,
) -> Path:
    """Kvasir-SEG in ``root/{images,masks}`` (default ``<data>/kvasir-seg``), downloaded if missing.

    Nothing is downloaded or written when ``root`` already holds ``images/`` and ``masks/``. Otherwise
    the official archive (``url``, ``$FCN_TUTORIAL_KVASIR_URL`` or :data:`KVASIR_URL`, about 46 MB) is
    downloaded beside ``root`` under a temporary name of its own (a file of yours named
    ``<root>.zip`` is never touched), checked (``sha256`` or ``$FCN_TUTORIAL_KVASIR_SHA256`` when
    given; a readable zip of ``images/`` and ``masks/`` pairs within the zip-bomb limits in any case),
    unpacked safely, and its ``Kvasir-SEG/images`` and ``Kvasir-SEG/masks`` moved to ``root``. The
    archive is then removed, or with ``keep_archive`` kept as ``<root>.zip`` (under its temporary name,
    with a warning, if ``<root>.zip`` already exists).
    """
    root = Path(root) if root is not None else data_home() / "kvasir-seg"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return root
    _check_root(root, "images/ and masks/ folders")
    url = url or os.environ.get(KVASIR_URL_ENV) or KVASIR_URL
    sha256 = sha256 or os.environ.get(KVASIR_SHA256_ENV) or KVASIR_SHA256
    root.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=root.parent, prefix=f".{root.name}.", suffix=".zip.part")  # ours alone
    os.close(handle)
    archive = Path(name)
    try:
        download_file(url, archive, sha256=sha256, progress=progress)
        check_pairs_archive(archive)
        _unpack_into(archive, root, ("images", "masks"))
        if keep_archive:
            archive = _keep(archive, root.parent / f"{root.name}.zip")
    finally:
        if not keep_archive:
            archive.unlink(missing_ok=True)
    return root


def _keep(archive: Path, wanted: Path) -> Path:
    """Give the downloaded ``archive`` the name ``wanted``, unless a file has it (never overwritten)."""
    try:
        os.link(archive, wanted)  # fails if ``wanted`` exists, where a rename would replace it
    except OSError:
        warnings.warn(f"{wanted} exists and is left alone; the downloaded archive is kept as {archive}", stacklevel=3)
        return archive
    archive.unlink()
    return wanted


def polyps912_instructions(root: Path) -> str:
    """How to get CVC-912 (``polyps_split7.zip``) into ``root``, for error messages and docs."""
    return (
        f"CVC-912 is polyps_split7.zip on Google Drive (id {POLYPS912_DRIVE_ID}, from the 2017 tutorial's "
        f"set-up script): `fcn-tutorial data download polyps912` fetches it (needs "
        f"`pip install 'fcn-tutorial[gdrive]'`; another id with --gdrive-id or {POLYPS912_ID_ENV}). By hand: "
        f"download https://drive.google.com/file/d/{POLYPS912_DRIVE_ID}/view, unzip it, and move the folder "
        f"holding train/, valid/ and test/ to {display_path(root)} (so that "
        f"{display_path(root)}/train/images/*.bmp and {display_path(root)}/train/masks2/*.tif exist)."
    )


def download_polyps912(
    file_id: str | None = None, root: str | os.PathLike | None = None, *, progress: bool | None = True
) -> Path:
    """CVC-912 in ``root`` (default ``<data>/polyps912``), fetched from Google Drive with ``gdown``.

    ``file_id`` (or ``$FCN_TUTORIAL_POLYPS912_ID``) is the Drive id of ``polyps_split7.zip``; the
    default, :data:`POLYPS912_DRIVE_ID`, is the one the 2017 tutorial's set-up script gives
    (lisa-lab/DeepLearningTutorials: "Get polyps_split7.zip from
    https://drive.google.com/file/d/0B_60jvsCt1hhZWNfcW4wbHE5N3M/view"). Needs the optional
    dependency ``gdown`` (``pip install 'fcn-tutorial[gdrive]'``). The archive goes to a temporary
    file of its own, is unpacked safely (:func:`extract_zip`, with its zip-bomb limits), and its
    folder holding ``train/``, ``valid/`` and ``test/`` becomes ``root``.
    """
    root = Path(root) if root is not None else data_home() / "polyps912"
    if (root / "train" / "images").is_dir():
        return root
    _check_root(root, "train/images/ folder")
    file_id = file_id or os.environ.get(POLYPS912_ID_ENV) or POLYPS912_DRIVE_ID
    try:
        import gdown
    except ImportError:
        raise ValueError(
            "downloading from Google Drive needs gdown: pip install 'fcn-tutorial[gdrive]'. "
            + polyps912_instructions(root)
        ) from None
    root.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=root.parent, prefix=".polyps_split7.", suffix=".zip.part")
    os.close(handle)
    try:
        try:
            result = gdown.download(id=file_id, output=temporary, quiet=progress is False)
        except Exception as error:  # noqa: BLE001 - gdown's and requests' own errors become one OSError
            raise OSError(f"download of Google Drive file {file_id} failed: {_describe(error)}") from None
        if result is None:
            raise OSError(
                f"download of Google Drive file {file_id} failed (is the file still shared?). "
                + polyps912_instructions(root)
            )
        if not zipfile.is_zipfile(temporary):
            raise ValueError(f"Google Drive file {file_id} is not a zip archive (is the id that of polyps_split7.zip?)")
        _unpack_into(Path(temporary), root, ("train", "valid", "test"))
    finally:
        Path(temporary).unlink(missing_ok=True)
    return root


def _check_root(root: Path, expected: str) -> None:
    """A data set is unpacked only into a new or empty folder: never over a user's files."""
    if root.exists() and not root.is_dir():
        raise ValueError(f"{display_path(root)} is a file; pass a folder as the data set's root")
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{display_path(root)} exists but has no {expected}; move it away or pass another root")


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
