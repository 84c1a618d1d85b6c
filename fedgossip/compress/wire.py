"""The packet format on the wire: a fixed header, then the compressor's payload.

Header (little-endian, 52 bytes)::

    magic      4s  b"FGSP"
    version    B   WIRE_VERSION
    kind       B   what the packet is to its algorithm (asynchronous swarm: offer or reply; else 0)
    compressor H   compressor_id(name)
    count      Q   float32 values the payload decodes to
    block      I   block size of block-wise codes (0: none)
    sender     I   node that framed the packet
    sequence   Q   per-edge sequence number (0 where unused)
    length     Q   payload length in bytes
    crc32      I   CRC32 of the payload
    deliver_at d   wall-clock time (sender's time.time()) at which an emulated --link delivers
                   it; 0 without --link. Outside the CRC: the sender stamps it after framing.

The whole packet is one uint8 array sent with uppercase MPI calls: nothing is
pickled. A receiver checks every header field against what it expects before
touching the payload, so a malformed packet is a ``WireError`` naming the
sender, never a crash, a hang or an oversized allocation.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from fedgossip.compress.base import Packet
from fedgossip.errors import WireError

__all__ = [
    "WIRE_VERSION",
    "HEADER_SIZE",
    "Header",
    "frame",
    "unframe",
    "packet_kind",
    "packet_sender",
    "stamp_delivery",
    "delivery_time",
]

WIRE_VERSION = 2  # 2: the kind byte and the delivery time
_MAGIC = b"FGSP"
_HEADER = struct.Struct("<4sBBHQIIQQId")
HEADER_SIZE = _HEADER.size
_DELIVER_AT = struct.Struct("<d")
_DELIVER_AT_OFFSET = HEADER_SIZE - _DELIVER_AT.size
_KIND_OFFSET = 5  # after magic and version


@dataclass(frozen=True)
class Header:
    """The decoded header of a received packet."""

    compressor: int
    count: int
    block: int
    sender: int
    sequence: int
    length: int
    crc32: int
    kind: int = 0
    deliver_at: float = 0.0


def frame(packet: Packet, compressor: int, sender: int, sequence: int = 0, kind: int = 0) -> np.ndarray:
    """Return header and payload as one contiguous uint8 array, ready for ``Isend``."""
    payload = np.ascontiguousarray(packet.payload, dtype=np.uint8).ravel()
    header = _HEADER.pack(
        _MAGIC,
        WIRE_VERSION,
        kind,
        compressor,
        packet.count,
        packet.block,
        sender,
        sequence,
        payload.size,
        zlib.crc32(payload),
        0.0,
    )
    buffer = np.empty(HEADER_SIZE + payload.size, dtype=np.uint8)
    buffer[:HEADER_SIZE] = np.frombuffer(header, dtype=np.uint8)
    buffer[HEADER_SIZE:] = payload
    return buffer


def unframe(
    buffer: np.ndarray,
    source: int,
    compressor: int,
    count: int,
    max_payload: int,
    sequence: int | None = None,
) -> tuple[Header, Packet]:
    """Check a received buffer against what the receiver expects and return its packet.

    ``source`` is the node the receiver expects it from; ``count`` the number of values
    expected; ``max_payload`` the largest payload the compressor can produce for
    ``count`` values; ``sequence`` the expected sequence number, if any.
    """
    raw = np.asarray(buffer, dtype=np.uint8).ravel()
    if raw.size < HEADER_SIZE:
        raise WireError(
            f"packet from node {source} is {raw.size} bytes, shorter than the {HEADER_SIZE}-byte header"
        )
    fields = _HEADER.unpack(raw[:HEADER_SIZE].tobytes())
    magic, version, kind, wire_compressor, wire_count, block, sender, wire_sequence, length, crc, _ = fields
    problems = []
    if magic != _MAGIC:
        problems.append(f"bad magic {magic!r}")
    if version != WIRE_VERSION:
        problems.append(f"wire version {version}, expected {WIRE_VERSION} (mixed fedgossip versions?)")
    if wire_compressor != compressor:
        problems.append(f"compressor id {wire_compressor}, expected {compressor} (one --compressor for all?)")
    if sender != source:
        problems.append(f"header names sender {sender}")
    if wire_count != count:
        problems.append(f"{wire_count} values, expected {count}")
    if length != raw.size - HEADER_SIZE:
        problems.append(f"header says {length} payload bytes, {raw.size - HEADER_SIZE} arrived")
    if length > max_payload:
        problems.append(f"payload of {length} bytes exceeds the {max_payload} allowed for {count} values")
    if sequence is not None and wire_sequence != sequence:
        problems.append(f"sequence number {wire_sequence}, expected {sequence}")
    if problems:
        raise WireError(f"malformed packet from node {source}: " + "; ".join(problems))
    payload = raw[HEADER_SIZE:]
    if zlib.crc32(payload) != crc:
        raise WireError(f"packet from node {source} failed its CRC32 check (corrupted in transit)")
    header = Header(
        wire_compressor, wire_count, block, sender, wire_sequence, length, crc, kind, delivery_time(raw)
    )
    return header, Packet(count=wire_count, payload=payload, block=block)


def stamp_delivery(buffer: np.ndarray, deliver_at: float) -> None:
    """Write the emulated link's delivery time into a framed buffer (the CRC does not cover it)."""
    _DELIVER_AT.pack_into(buffer, _DELIVER_AT_OFFSET, deliver_at)


def delivery_time(buffer: np.ndarray) -> float:
    """Return the delivery time stamped in a received buffer; 0 when absent or not a finite number.

    Read before the packet is checked, so it must be harmless whatever it holds:
    the receiver also caps how long it will hold a packet (see ``comm.link``).
    """
    raw = np.asarray(buffer, dtype=np.uint8).ravel()
    if raw.size < HEADER_SIZE:
        return 0.0
    (value,) = _DELIVER_AT.unpack_from(raw[_DELIVER_AT_OFFSET:HEADER_SIZE].tobytes())
    return value if math.isfinite(value) and value > 0 else 0.0


def packet_kind(buffer: np.ndarray) -> int:
    """Return the kind byte of a received buffer (-1 if too short), to route it before it is checked."""
    raw = np.asarray(buffer, dtype=np.uint8).ravel()
    return int(raw[_KIND_OFFSET]) if raw.size >= HEADER_SIZE else -1


_SENDER_OFFSET = 4 + 1 + 1 + 2 + 8 + 4  # magic, version, kind, compressor, count, block


def packet_sender(buffer: np.ndarray) -> int:
    """Return the sender named in a buffer's header (-1 if too short), to route it before it is checked."""
    raw = np.asarray(buffer, dtype=np.uint8).ravel()
    if raw.size < HEADER_SIZE:
        return -1
    return int.from_bytes(raw[_SENDER_OFFSET : _SENDER_OFFSET + 4].tobytes(), "little")
