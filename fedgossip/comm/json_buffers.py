"""Small control data between ranks as UTF-8 JSON in byte buffers: nothing received is unpickled.

mpi4py's lowercase calls (``bcast``, ``gather``, ``allgather``) pickle their objects,
and unpickling runs whatever the sender chose; a rank may be compromised, so what it
sends is parsed as JSON instead. Each collective sends the lengths first, as int64,
then the bytes with the uppercase (buffer) calls. JSON has no tuples and only string
keys: a tuple comes back as a list, on the sender too, so every rank holds the same value.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from mpi4py import MPI

from fedgossip.errors import WireError

__all__ = ["bcast_json", "gather_json", "allgather_json"]


def bcast_json(comm: MPI.Intracomm, value: Any = None, root: int = 0) -> Any:
    """Return ``value`` of rank ``root`` on every rank (the others' ``value`` is ignored)."""
    data = _encode(value) if comm.Get_rank() == root else b""
    length = np.array([len(data)], dtype=np.int64)
    comm.Bcast(length, root=root)
    buffer = np.frombuffer(data, dtype=np.uint8).copy() if comm.Get_rank() == root else None
    if buffer is None:
        buffer = np.empty(int(length[0]), dtype=np.uint8)
    comm.Bcast(buffer, root=root)
    return _decode(buffer.tobytes(), root)


def gather_json(comm: MPI.Intracomm, value: Any, root: int = 0) -> list[Any] | None:
    """Return every rank's ``value``, by rank, on rank ``root``; None on the others."""
    data = np.frombuffer(_encode(value), dtype=np.uint8)
    length = np.array([data.size], dtype=np.int64)
    is_root = comm.Get_rank() == root
    lengths = np.empty(comm.Get_size(), dtype=np.int64) if is_root else None
    comm.Gather(length, lengths, root=root)
    if not is_root:
        comm.Gatherv(data, None, root=root)
        return None
    received = np.empty(int(lengths.sum()), dtype=np.uint8)
    comm.Gatherv(data, [received, (lengths, _starts(lengths)), MPI.BYTE], root=root)
    return _split(received, lengths)


def allgather_json(comm: MPI.Intracomm, value: Any) -> list[Any]:
    """Return every rank's ``value``, by rank, on every rank."""
    data = np.frombuffer(_encode(value), dtype=np.uint8)
    lengths = np.empty(comm.Get_size(), dtype=np.int64)
    comm.Allgather(np.array([data.size], dtype=np.int64), lengths)
    received = np.empty(int(lengths.sum()), dtype=np.uint8)
    comm.Allgatherv(data, [received, (lengths, _starts(lengths)), MPI.BYTE])
    return _split(received, lengths)


def _starts(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)


def _split(received: np.ndarray, lengths: np.ndarray) -> list[Any]:
    ends = np.cumsum(lengths)
    return [
        _decode(received[end - length : end].tobytes(), rank)
        for rank, (length, end) in enumerate(zip(lengths, ends, strict=True))
    ]


def _encode(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # a programming error, not a peer's: only plain data (str, numbers, lists, dicts) may travel
        raise TypeError(f"only JSON data travels between ranks: {exc}") from exc


def _decode(data: bytes, rank: int) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"rank {rank} sent control data that is not UTF-8 JSON ({exc})") from exc
