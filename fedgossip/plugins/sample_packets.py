"""A batch of samples as one uint8 message: exact labels, features quantized like model packets.

``--share-data`` sends raw (quantized) samples, so what a receiver trains on is
what this module lets through: every field is checked before the payload is
touched, and a malformed message is a ``WireError`` naming the sender.

Message, little-endian::

    magic       4s  b"FGSD"
    version     B   SAMPLE_VERSION
    bits        B   bits per feature value (the ``uniform`` code's)
    label_width B   bytes per label: 1 (uint8) when num_classes <= 256, else 4 (int32)
    (pad)       x
    sender      I   node that encoded the message
    count       I   samples in the message
    features    I   values per sample (the product of the input shape)
    labels_crc  I   CRC32 of the label bytes (the features have their own, in the wire header)
    labels      label_width × count
    packet      the features flattened to one vector, framed by ``compress.wire.frame``:
                a 52-byte packet header, then ``uniform:bits=B,block=1024`` with
                nearest rounding (a lo and a step per block of values, codes bit-packed)

so a message of ``n`` samples of ``f`` values holds
``24 + w·n + 52 + 8·ceil(n·f/1024) + ceil(n·f·B/8)`` bytes (:func:`message_size`).
Labels travel exact: a wrong label is a wrong sample, however fine the features.
"""

from __future__ import annotations

import functools
import math
import struct
import zlib

import numpy as np
import torch

from fedgossip.compress import COMPRESSORS, Compressor
from fedgossip.compress.wire import HEADER_SIZE, frame, unframe
from fedgossip.errors import DataError, WireError

__all__ = [
    "SAMPLE_VERSION",
    "SAMPLE_HEADER_SIZE",
    "BLOCK",
    "label_width",
    "message_size",
    "encode_samples",
    "decode_samples",
    "message_sender",
]

SAMPLE_VERSION = 1
BLOCK = 1024  # feature values per quantization block, each with its own lo and step
_MAGIC = b"FGSD"
_HEADER = struct.Struct("<4sBBBxIIII")
SAMPLE_HEADER_SIZE = _HEADER.size
_LABEL_DTYPES = {1: np.dtype("u1"), 4: np.dtype("<i4")}


@functools.cache
def _quantizer(bits: int) -> Compressor:
    # Nearest rounding, not stochastic: a sample is sent once and trained on for many rounds,
    # so its smallest error matters, not an error that averages out over draws.
    return COMPRESSORS.create(f"uniform:bits={bits},block={BLOCK},rounding=nearest")


def label_width(num_classes: int) -> int:
    """Return the bytes per label on the wire: 1 up to 256 classes, else 4."""
    return 1 if num_classes <= 256 else 4


def message_size(count: int, features: int, bits: int, num_classes: int) -> int:
    """Return the exact size in bytes of a message of ``count`` samples of ``features`` values each."""
    values = count * features
    return (
        SAMPLE_HEADER_SIZE + label_width(num_classes) * count + HEADER_SIZE + _quantizer(bits).nbytes(values)
    )


def encode_samples(
    x: np.ndarray, y: np.ndarray, sender: int, bits: int, num_classes: int, sequence: int = 0
) -> np.ndarray:
    """Return samples ``x`` (``[n, *input_shape]``) and labels ``y`` as one uint8 message.

    ``sequence`` goes into the features' packet header, so a receiver can tell
    this exchange's message from a stale one.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    count = len(y)
    if len(x) != count:
        raise DataError(f"cannot share {len(x)} samples with {count} labels; pass one label per sample")
    if count and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(
            f"labels must lie in 0..{num_classes - 1}, got {y.min()}..{y.max()}; check the dataset's classes"
        )
    if not np.isfinite(x).all():  # caught here, the message names the real culprit, not its neighbours
        raise DataError(f"node {sender}'s shard holds NaN or infinite features; recreate the partition")
    features = math.prod(x.shape[1:])
    labels = y.astype(_LABEL_DTYPES[label_width(num_classes)]).tobytes()
    quantizer = _quantizer(bits)
    packet = quantizer.encode(torch.from_numpy(x.reshape(-1)))
    framed = frame(packet, quantizer.wire_id, sender, sequence)
    header = _HEADER.pack(
        _MAGIC, SAMPLE_VERSION, bits, label_width(num_classes), sender, count, features, zlib.crc32(labels)
    )
    message = np.empty(len(header) + len(labels) + framed.size, dtype=np.uint8)
    message[: len(header)] = np.frombuffer(header, dtype=np.uint8)
    message[len(header) : len(header) + len(labels)] = np.frombuffer(labels, dtype=np.uint8)
    message[len(header) + len(labels) :] = framed
    return message


def message_sender(buffer: np.ndarray) -> int:
    """Return the node a sample message says it comes from, after checking it is one at all."""
    raw = np.asarray(buffer, dtype=np.uint8).ravel()
    if raw.size < SAMPLE_HEADER_SIZE or raw[:4].tobytes() != _MAGIC:
        raise WireError(f"a {raw.size}-byte message is not a sample message (no {_MAGIC!r} header)")
    return int(_HEADER.unpack_from(raw[:SAMPLE_HEADER_SIZE].tobytes())[4])


def decode_samples(
    buffer: np.ndarray,
    sender: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    max_count: int,
    bits: int,
    sequence: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Check a message from node ``sender`` and return its samples (float32) and labels (int64).

    ``input_shape``, ``num_classes`` and ``bits`` are what this node expects of
    every sender; ``max_count`` is the most samples a sender may put in one
    message (the budget); ``sequence``, if given, the exchange it must belong to.
    """
    raw = np.asarray(buffer, dtype=np.uint8).ravel()
    count = _check_header(raw, sender, input_shape, num_classes, max_count, bits)
    width = label_width(num_classes)
    labels_end = SAMPLE_HEADER_SIZE + width * count
    labels = raw[SAMPLE_HEADER_SIZE:labels_end].view(_LABEL_DTYPES[width]).astype(np.int64)
    (labels_crc,) = struct.unpack_from("<I", raw[SAMPLE_HEADER_SIZE - 4 : SAMPLE_HEADER_SIZE].tobytes())
    if zlib.crc32(raw[SAMPLE_HEADER_SIZE:labels_end]) != labels_crc:
        raise WireError(f"sample message from node {sender}: labels failed their CRC32 check (corrupted)")
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise WireError(
            f"sample message from node {sender}: labels {labels.min()}..{labels.max()} outside "
            f"0..{num_classes - 1} (does every rank read the same dataset?)"
        )
    features = _decode_features(raw[labels_end:], sender, count * math.prod(input_shape), bits, sequence)
    return features.reshape(count, *input_shape), labels


def _check_header(
    raw: np.ndarray, sender: int, input_shape: tuple[int, ...], num_classes: int, max_count: int, bits: int
) -> int:
    """Check every field of the message header and its total length; return the sample count."""
    if raw.size < SAMPLE_HEADER_SIZE:
        raise WireError(
            f"sample message from node {sender} is {raw.size} bytes, shorter than its "
            f"{SAMPLE_HEADER_SIZE}-byte header"
        )
    magic, version, wire_bits, width, wire_sender, count, features, _ = _HEADER.unpack(
        raw[:SAMPLE_HEADER_SIZE].tobytes()
    )
    expected_features = math.prod(input_shape)
    problems = []
    if magic != _MAGIC:
        problems.append(f"bad magic {magic!r}, expected {_MAGIC!r}")
    if version != SAMPLE_VERSION:
        problems.append(f"format version {version}, expected {SAMPLE_VERSION} (mixed fedgossip versions?)")
    if wire_bits != bits:
        problems.append(f"{wire_bits} bits per value, expected {bits} (one --share-data for all ranks?)")
    if width != label_width(num_classes):
        problems.append(f"{width}-byte labels, expected {label_width(num_classes)} for {num_classes} classes")
    if wire_sender != sender:
        problems.append(f"header names sender {wire_sender}")
    if count > max_count:
        problems.append(f"{count} samples, at most {max_count} allowed")
    if features != expected_features:
        problems.append(
            f"{features} values per sample, expected {expected_features} (same dataset everywhere?)"
        )
    if not problems:  # the size is only meaningful once count and features are known to be sane
        expected = message_size(count, features, bits, num_classes)
        if raw.size != expected:
            problems.append(f"{raw.size} bytes arrived, the header implies {expected}")
    if problems:
        raise WireError(f"malformed sample message from node {sender}: " + "; ".join(problems))
    return count


def _decode_features(
    framed: np.ndarray, sender: int, values: int, bits: int, sequence: int | None
) -> np.ndarray:
    """Unframe and dequantize the features' packet; refuse values that are not finite numbers."""
    quantizer = _quantizer(bits)
    _, packet = unframe(framed, sender, quantizer.wire_id, values, quantizer.nbytes(values), sequence)
    try:
        decoded = quantizer.decode(packet).numpy()
    except WireError as exc:
        raise WireError(f"malformed sample message from node {sender}: {exc}") from None
    if not np.all(np.isfinite(decoded)):
        raise WireError(
            f"sample message from node {sender} decodes to NaN or infinite feature values; "
            "check the sender's data"
        )
    return decoded
