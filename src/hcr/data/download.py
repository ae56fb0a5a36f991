"""Verified downloads with atomic writes, a verification cache, and clear offline errors.

Every data file hcr fetches is described by a :class:`RemoteFile` (name, mirrors, checksums).
Downloads stream to a hidden ``.<name>.part`` file and are moved into place only once their
size and checksum are right, so a final file never exists half-written. Without network the
error says exactly which files to fetch by hand, from where, and where to put them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from platformdirs import user_cache_dir

from ..errors import DataError
from .base import ENV_DATA_DIR

VERIFIED_CACHE = ".hcr-verified.json"
_CHUNK = 1 << 20
_USER_AGENT = "hcr (handwritten character recognition; python urllib)"
# What a missing network looks like: no route, refused, reset, timed out, bad HTTP status.
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout)


@dataclass(frozen=True)
class RemoteFile:
    """A file a data source needs, where to get it, and how to recognise a good copy."""

    filename: str  # name on disk inside the source's cache folder
    urls: tuple[str, ...]  # mirrors tried in order
    md5: str | None = None  # of the file as downloaded
    content_md5: str | None = None  # of the gunzipped content (hand-placed .gz with other gzip bytes)
    size: int | None = None  # expected bytes, if known (spots truncated downloads)


def file_md5(path: Path, gunzip: bool = False) -> str:
    """Hex md5 of a file, or of its decompressed content when ``gunzip`` is true."""
    h = hashlib.md5()
    try:
        with (gzip.open(path, "rb") if gunzip else open(path, "rb")) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a valid gzip file: {e}") from None
    return h.hexdigest()


def _checksum_problem(path: Path, rf: RemoteFile) -> str | None:
    """``None`` if ``path`` matches ``rf``'s checksums (or none are known), else why not."""
    if rf.md5 is None and rf.content_md5 is None:
        return None
    got = file_md5(path)
    if rf.md5 is not None and got == rf.md5.lower():
        return None
    if rf.content_md5 is not None and rf.filename.endswith(".gz"):
        try:
            content = file_md5(path, gunzip=True)
        except DataError:
            content = None
        if content == rf.content_md5.lower():
            return None
        if rf.md5 is None:
            return f"expected md5 {rf.content_md5} of the gunzipped content, got {content or 'no valid gzip data'}"
    expected = rf.md5 if rf.md5 is not None else rf.content_md5
    return f"expected md5 {expected}, got {got}"


def _cache_key(path: Path, rf: RemoteFile) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": rf.md5, "content_md5": rf.content_md5}


def _fallback_dir() -> Path:
    return Path(user_cache_dir("hcr")) / "verified"


def _cache_file(directory: Path) -> Path:
    """The sidecar in ``directory``; for a folder marked read-only (never written to, even by
    root), a file in the user cache named after the folder."""
    try:
        writable = bool(directory.stat().st_mode & 0o222) and os.access(directory, os.W_OK)
    except OSError:
        writable = False
    if writable:
        return directory / VERIFIED_CACHE
    key = hashlib.sha1(str(directory.resolve()).encode("utf-8")).hexdigest()[:16]
    return _fallback_dir() / f"{key}.json"


def _read_cache(directory: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_cache_file(directory).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_verified(path: Path, rf: RemoteFile) -> None:
    """Record a positive verification; silently skipped where it cannot be written."""
    cache = _read_cache(path.parent)
    cache[path.name] = _cache_key(path, rf)
    target = _cache_file(path.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def verify_file(path: Path, rf: RemoteFile) -> None:
    """Raise :class:`DataError` if ``path`` fails ``rf``'s checksum; no checksum known passes.

    A positive result is cached in ``<dir>/.hcr-verified.json`` (keyed by name, size,
    modification time and expected checksums) so large files are hashed only once.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if rf.md5 is None and rf.content_md5 is None:
        return
    if _read_cache(path.parent).get(path.name) == _cache_key(path, rf):
        return
    problem = _checksum_problem(path, rf)
    if problem is not None:
        raise DataError(f"checksum mismatch for {path}: {problem}")
    _remember_verified(path, rf)


def offline_message(files: Sequence[RemoteFile], dest_dir: Path, reason: str = "") -> str:
    """Say which files are missing, where to get them, and exactly where to put them."""
    dest_dir = Path(dest_dir)
    names = ", ".join(rf.filename for rf in files)
    where = "; ".join(f"{rf.filename} from {' or '.join(rf.urls) or '(no known URL)'}" for rf in files)
    because = f" ({reason})" if reason else ""
    return (
        f"missing data file(s) {names} in {dest_dir}{because}. "
        f"Download them by hand ({where}) and place them in {dest_dir}, "
        f"or use --data-dir DIR (or the {ENV_DATA_DIR} environment variable) to point at a data "
        f"folder whose {dest_dir.name!r} sub-folder already holds them."
    )


def _fetch(url: str, part: Path, rf: RemoteFile, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part`` and check its size; network errors propagate."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        header = resp.headers.get("Content-Length", "")
        length = int(header) if header.isdigit() else None
        expected = length if length is not None else rf.size
        received = 0
        with open(part, "wb") as out, tqdm(
            total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=rf.filename, disable=not progress
        ) as bar:
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except http.client.IncompleteRead as e:  # server closed early
                    out.write(e.partial)
                    received += len(e.partial)
                    break
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    for total in (length, rf.size):
        if total is not None and received < total:
            raise DataError(
                f"download of {rf.filename} was truncated: got {received} of {total} bytes; the partial file was removed"
            )
    if rf.size is not None and received != rf.size:
        raise DataError(
            f"download of {rf.filename} has {received} bytes, expected {rf.size}; the partial file was removed"
        )


class OfflineError(DataError):
    """No mirror of a file could be reached (as opposed to a bad or truncated download)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def download_file(rf: RemoteFile, dest_dir: Path, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download ``rf`` into ``dest_dir`` (mirrors in order), verified, moved into place atomically."""
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the data folder {dest_dir}: {e}") from None
    final = dest_dir / rf.filename
    part = dest_dir / f".{rf.filename}.part"
    network_problems: list[str] = []
    integrity_error: DataError | None = None
    for url in rf.urls:
        try:
            _fetch(url, part, rf, progress, timeout)
            problem = _checksum_problem(part, rf)
            if problem is not None:
                raise DataError(
                    f"checksum mismatch for {rf.filename} downloaded from {url}: {problem}; the partial file was removed"
                )
            os.replace(part, final)
        except _NETWORK_ERRORS as e:
            if isinstance(e, urllib.error.HTTPError):
                e.close()  # it holds the response's connection
            why = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
            network_problems.append(f"{url}: {why}")
            continue
        except DataError as e:
            integrity_error = e
            continue
        except OSError as e:  # local trouble (disk full, permissions): no mirror will help
            raise DataError(f"could not write {final}: {e}") from None
        finally:
            part.unlink(missing_ok=True)
        if rf.md5 is not None or rf.content_md5 is not None:
            _remember_verified(final, rf)
        return final
    if integrity_error is not None:
        raise integrity_error
    reason = "could not download: " + ("; ".join(network_problems) if network_problems else "no download URL is known")
    raise OfflineError(offline_message([rf], dest_dir, reason), reason)


def ensure_files(
    files: Sequence[RemoteFile], dest_dir: Path, *, download: bool = True, progress: bool = True
) -> list[Path]:
    """Paths of ``files`` in ``dest_dir``: present ones verified, missing ones downloaded.

    A present file that fails its checksum is never deleted: the error says to delete or
    replace it. With ``download=False`` every missing file is listed in one error.
    """
    dest_dir = Path(dest_dir)
    missing: list[RemoteFile] = []
    for rf in files:
        path = dest_dir / rf.filename
        if not path.is_file():
            missing.append(rf)
            continue
        try:
            verify_file(path, rf)
        except DataError as e:
            where = " or ".join(rf.urls) or "its publisher"
            raise DataError(
                f"{e}; delete it to download it again, or replace it with a correct copy from {where}"
            ) from None
    if missing and not download:
        raise DataError(offline_message(missing, dest_dir, "downloading is turned off"))
    for i, rf in enumerate(missing):
        try:
            download_file(rf, dest_dir, progress=progress)
        except OfflineError as e:  # name every file still missing, not only the first
            raise DataError(offline_message(missing[i:], dest_dir, e.reason)) from None
    return [dest_dir / rf.filename for rf in files]


def extract_members(zip_path: Path, members: Mapping[str, str], dest_dir: Path) -> list[Path]:
    """Extract zip members (member name -> output filename) into ``dest_dir``, each atomically."""
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{zip_path} is not a readable zip file: {e}") from None
    with archive:
        names = set(archive.namelist())
        absent = [m for m in members if m not in names]
        if absent:
            raise DataError(f"{zip_path} has no member {absent[0]!r} (missing: {', '.join(absent)})")
        dest_dir.mkdir(parents=True, exist_ok=True)
        out: list[Path] = []
        for member, filename in members.items():
            final = dest_dir / filename
            part = dest_dir / f".{filename}.part"
            try:
                with archive.open(member) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                os.replace(part, final)
            except (zipfile.BadZipFile, zlib.error, EOFError) as e:
                raise DataError(f"{zip_path}: member {member!r} is corrupt: {e}") from None
            finally:
                part.unlink(missing_ok=True)
            out.append(final)
    return out
