"""Download the files of a dataset source and keep them only when their SHA-256 is right.

A source that can be downloaded declares two class attributes:
``remote_files`` (file name -> SHA-256, ``None`` where no sum is known) and
``default_url`` (the folder the files are served from). Nothing here prints;
progress goes to an optional callback and to ``logging``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from fedgossip.data.sources.base import SOURCES, DatasetSource
from fedgossip.errors import ConfigError, DataError

__all__ = ["Progress", "fetch", "download", "extract_tar"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, bytes_total)``; the total is ``None`` when the server does not say."""

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ARCHIVES = (".tar.gz", ".tgz", ".tar")
# Python >= 3.11.4 can also strip permissions and special files while extracting.
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def fetch(url: str, dest: Path, sha256: str, progress: Progress | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, keeping it only if its SHA-256 is ``sha256``.

    The bytes stream into a temporary file beside ``dest`` and are hashed as they
    arrive; the file is renamed into place only when the hash matches, so ``dest``
    never holds a partial or wrong download and nothing is left behind on failure.

    Raises
    ------
    DataError
        On a network or HTTP error (naming the URL) or a hash mismatch (naming the
        URL, the expected and the actual hash).
    """
    dest = Path(dest)
    expected = _checked_sha256(sha256, dest.name)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(
            f"cannot write to {dest.parent}: {exc.strerror or exc}; choose a writable --dir"
        ) from exc
    temp = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress is not None:
                progress(done, total)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        actual = digest.hexdigest()
        if actual != expected:
            raise DataError(
                f"{url} has SHA-256 {actual}, expected {expected}; the download is corrupt or the file "
                "changed on the server. Nothing was kept; try again, or pass --checksums with the sum the "
                "publisher lists now"
            )
        os.replace(temp, dest)
    except urllib.error.HTTPError as exc:
        raise DataError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}; {_retry(dest, expected)}"
        ) from exc
    except urllib.error.URLError as exc:
        raise DataError(f"cannot download {url}: {exc.reason}; {_retry(dest, expected)}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DataError(f"cannot download {url}: {exc}; {_retry(dest, expected)}") from exc
    finally:
        temp.unlink(missing_ok=True)  # gone already when it was renamed into place
    log.info("downloaded %s to %s (sha256 %s)", url, dest, expected)
    return dest


def download(
    source: str | type[DatasetSource],
    directory: Path | str,
    base_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Download every file of ``source`` into ``directory``; extract archives there.

    Parameters
    ----------
    source
        A source name (``"mnist"``) or class with ``remote_files`` and ``default_url``.
    directory
        Where the files go (created if missing). Files already there with the
        right SHA-256 are not downloaded again.
    base_url
        Folder to download from instead of the source's ``default_url`` (a mirror).
    checksums
        File name -> SHA-256, overriding the source's built-in sums.
    progress
        Called with ``(bytes_done, bytes_total)`` during each file's download.

    Returns
    -------
    list of Path
        The downloaded (or already present) files. Tar archives such as
        ``cifar-10-binary.tar.gz`` are also extracted into ``directory``.
    """
    plugin = SOURCES.get(source) if isinstance(source, str) else source
    label = source if isinstance(source, str) else (plugin.name or plugin.__name__)
    remote: dict[str, str | None] = dict(getattr(plugin, "remote_files", None) or {})
    if not remote:
        able = [name for name, cls in SOURCES.available().items() if getattr(cls, "remote_files", None)]
        raise ConfigError(
            f"{label} has no files to download; sources that can be downloaded: {', '.join(able)}"
        )
    unknown = sorted(set(checksums or {}) - set(remote))
    if unknown:
        raise ConfigError(
            f"--checksums names {', '.join(unknown)}, which {label} does not download; its files are "
            f"{', '.join(remote)}"
        )
    remote.update(checksums or {})
    unpinned = [name for name, digest in remote.items() if not digest]
    if unpinned:
        raise ConfigError(
            f"no SHA-256 is known for {', '.join(unpinned)} of {label}, so a download could not be "
            "checked; pass --checksums NAME=SHA256 with the sum the publisher lists"
        )
    pinned = {name: _checked_sha256(str(digest), name) for name, digest in remote.items()}
    base = (base_url or getattr(plugin, "default_url", "")).rstrip("/")
    directory = Path(directory).expanduser()
    paths = []
    for name, digest in pinned.items():
        path = directory / name
        if path.is_file() and _file_sha256(path) == digest:
            log.info("%s is already present with the right SHA-256", path)
        else:
            fetch(f"{base}/{name}", path, digest, progress)
        if name.endswith(_ARCHIVES):
            extract_tar(path, directory)
        paths.append(path)
    return paths


def extract_tar(archive: Path, directory: Path) -> list[Path]:
    """Extract ``archive`` into ``directory`` after checking every member stays inside it.

    An archive holding a link, a device, an absolute path or a ``..`` component is
    refused as a whole, before anything is written.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            unsafe = [f"{m.name!r} ({reason})" for m in members if (reason := _unsafe(m))]
            if unsafe:
                raise DataError(
                    f"{archive} was not extracted: it holds members that could write outside "
                    f"{directory}: {', '.join(unsafe[:5])}; the archive is not the published one"
                )
            tar.extractall(directory, members=members, **_TAR_FILTER)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot extract {archive} ({exc}); delete it and download it again") from exc
    return [directory / m.name for m in members]


def _unsafe(member: tarfile.TarInfo) -> str | None:
    if member.issym() or member.islnk():
        return "a link"
    if not (member.isfile() or member.isdir()):
        return "a device or special file"
    parts = PurePosixPath(member.name.replace("\\", "/")).parts
    if member.name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        return "a path outside the folder"
    return None


def _checked_sha256(sha256: str, name: str) -> str:
    digest = str(sha256).strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ConfigError(f"{sha256!r} given for {name} is not a SHA-256 (64 hexadecimal digits)")
    return digest


def _retry(dest: Path, expected: str) -> str:
    return (
        f"check the address and the connection and try again, or download the file by hand to {dest} "
        f"(its SHA-256 must be {expected})"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}; delete it and download again") from exc
    return digest.hexdigest()
