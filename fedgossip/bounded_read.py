"""Read a file someone else may have replaced: only a regular file, and only up to a size.

Run directories and partitions are copied, shared and edited by hand, so any of
their files may have become a FIFO (a read waits forever for a writer), a link
to ``/dev/zero`` (a read fills memory), or a sparse file of a terabyte. Readers
check with :func:`file_problem` before handing a path to a library (h5py), and
read bytes with :func:`read_bounded`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileProblem", "file_problem", "read_bounded", "memory_bytes"]

_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


class FileProblem(Exception):
    """Why a file cannot be read, worded to follow its path: ``f"{path} {problem}"``."""


def file_problem(path: Path) -> str | None:
    """Say why ``path`` (its target, for a link) is not a regular file to read, or None; None if missing."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:  # no permission on a parent, a loop of links, a name too long
        return f"cannot be read ({exc.strerror or exc})"
    return None if stat.S_ISREG(mode) else _not_regular(mode)


def read_bounded(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file ``path``, refusing anything else and files over ``limit`` bytes.

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``FileProblem`` for
    everything else that stops the read.
    """
    if problem := file_problem(path):  # before opening: opening some devices has effects of its own
        raise FileProblem(problem)
    try:
        # Non-blocking: a FIFO swapped in after the check must not stop the open.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileProblem(f"cannot be read ({exc.strerror or exc})") from exc
    with os.fdopen(descriptor, "rb") as stream:
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise FileProblem(_not_regular(info.st_mode))
            if info.st_size > limit:
                raise FileProblem(f"holds {_size(info.st_size)}, more than the {_size(limit)} it may")
            data = stream.read(limit + 1)
        except OSError as exc:
            raise FileProblem(f"cannot be read ({exc.strerror or exc})") from exc
    if len(data) > limit:  # it grew while being read
        raise FileProblem(f"holds more than the {_size(limit)} it may")
    return data


def memory_bytes() -> int:
    """Return this machine's physical memory in bytes (8 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _KINDS.items() if test(mode)), "of another kind")
    return f"is not a regular file (it is {kind})"


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
