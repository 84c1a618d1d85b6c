"""Sample messages of ``--share-data``: exact labels, features within half a quantization step, and
a receiver that refuses anything malformed with a ``WireError`` naming the sender.

The error bound and the byte count are computed here from the data and the documented format,
not by the code under test.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedgossip.errors import DataError, WireError
from fedgossip.plugins import sample_packets
from fedgossip.plugins.sample_packets import decode_samples, encode_samples, message_size

SENDER = 5
SHAPE = (3, 5, 5)  # 75 values per sample: samples straddle the 1024-value blocks
BLOCK = 1024  # the format's block size, as documented in the module
HEADER = 24  # magic, version, bits, label width, pad, sender, count, features, labels CRC
PACKET_HEADER = 52  # compress.wire's header in front of the features
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Offsets of the sample header's fields ("<4sBBBxIIII").
VERSION, BITS, WIDTH, SENDER_AT, COUNT, FEATURES, LABELS_CRC = 4, 5, 6, 8, 12, 16, 20


def _samples(count: int, num_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((count, *SHAPE)) * 2 + 1).astype(np.float32)
    return x, rng.integers(0, num_classes, size=count)


def _decode(message, max_count=32, bits=8, num_classes=10, sequence=None, sender=SENDER):
    return decode_samples(message, sender, SHAPE, num_classes, max_count, bits, sequence)


def _half_steps(x: np.ndarray, bits: int) -> np.ndarray:
    """Return half the quantization step of the block each value falls in: (max − min) / (2**bits − 1) / 2."""
    flat = x.reshape(-1).astype(np.float64)
    half = np.empty_like(flat)
    for start in range(0, flat.size, BLOCK):
        part = flat[start : start + BLOCK]
        half[start : start + BLOCK] = (part.max() - part.min()) / ((1 << bits) - 1) / 2
    return half.reshape(x.shape)


def _labels_end(message: np.ndarray) -> int:
    (count,) = struct.unpack_from("<I", message, COUNT)
    return HEADER + int(message[WIDTH]) * count


def _fix_labels_crc(message: bytearray) -> None:
    end = _labels_end(np.frombuffer(bytes(message), dtype=np.uint8))
    struct.pack_into("<I", message, LABELS_CRC, zlib.crc32(bytes(message[HEADER:end])))


def _fix_packet_crc(message: bytearray) -> None:
    start = _labels_end(np.frombuffer(bytes(message), dtype=np.uint8))
    payload = bytes(message[start + PACKET_HEADER :])
    struct.pack_into("<I", message, start + 40, zlib.crc32(payload))


def _refused(message, match: str, **kwargs) -> None:
    with pytest.raises(WireError, match=rf"node {SENDER}\b.*{match}"):
        _decode(np.frombuffer(bytes(message), dtype=np.uint8).copy(), **kwargs)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("count", [1, 7, 32])
def test_round_trip_is_within_half_a_step_and_labels_are_exact(bits, count):
    x, y = _samples(count, seed=bits)
    got_x, got_y = _decode(encode_samples(x, y, SENDER, bits, 10), bits=bits)
    assert got_x.shape == x.shape and got_x.dtype == np.float32
    assert got_y.dtype == np.int64 and np.array_equal(got_y, y)
    # Slack: a few float32 roundings of values of size |x| ≤ ~10.
    assert np.all(np.abs(got_x - x) <= _half_steps(x, bits) + 1e-5 * (1 + np.abs(x)))


@pytest.mark.parametrize(("num_classes", "width"), [(2, 1), (256, 1), (257, 4), (100_000, 4)])
@pytest.mark.parametrize("bits", [1, 3, 8])
@pytest.mark.parametrize("count", [0, 1, 14, 32])
def test_size_is_the_documented_formula_and_the_buffer_length(num_classes, width, bits, count):
    x, y = _samples(count, num_classes)
    message = encode_samples(x, y, SENDER, bits, num_classes)
    values = count * math.prod(SHAPE)
    expected = HEADER + width * count + PACKET_HEADER + 8 * -(-values // BLOCK) + -(-values * bits // 8)
    assert message.dtype == np.uint8 and message.ndim == 1
    assert message.size == expected == message_size(count, math.prod(SHAPE), bits, num_classes)
    got_x, got_y = _decode(message, bits=bits, num_classes=num_classes)
    assert got_x.shape == (count, *SHAPE) and np.array_equal(got_y, y)


def test_large_labels_travel_exact():
    x, y = _samples(9, num_classes=70_000)
    y[0], y[1] = 0, 69_999
    _, got = _decode(encode_samples(x, y, SENDER, 4, 70_000), bits=4, num_classes=70_000)
    assert np.array_equal(got, y)


def test_more_samples_than_the_budget_are_refused():
    x, y = _samples(9)
    message = encode_samples(x, y, SENDER, 8, 10)
    _decode(message, max_count=9)
    _refused(message, "9 samples, at most 8 allowed", max_count=8)


def test_sender_refuses_labels_outside_the_classes():
    x, y = _samples(4)
    y[2] = 10
    with pytest.raises(DataError, match=r"0\.\.9"):
        encode_samples(x, y, SENDER, 8, 10)


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "match"),
    [
        (0, "<4s", b"FGSP", "bad magic"),
        (VERSION, "<B", 99, "format version 99"),
        (BITS, "<B", 4, "4 bits per value"),
        (WIDTH, "<B", 4, "4-byte labels"),
        (SENDER_AT, "<I", 2, "header names sender 2"),
        (FEATURES, "<I", 74, "74 values per sample"),
        (COUNT, "<I", 5, "header implies"),  # fewer samples than the bytes hold
        (COUNT, "<I", 2**32 - 1, "at most 32 allowed"),
    ],
)
def test_wrong_header_field_is_refused(offset, fmt, value, match):
    x, y = _samples(6)
    message = bytearray(encode_samples(x, y, SENDER, 8, 10).tobytes())
    struct.pack_into(fmt, message, offset, value)
    _refused(message, match)


@pytest.mark.parametrize("kept", [0, 10, HEADER - 1, HEADER, 500, -1])
def test_truncated_message_is_refused(kept):
    x, y = _samples(6)
    _refused(encode_samples(x, y, SENDER, 8, 10).tobytes()[:kept], "shorter than|header implies")


def test_message_with_a_byte_too_many_is_refused():
    x, y = _samples(6)
    _refused(encode_samples(x, y, SENDER, 8, 10).tobytes() + b"\0", "header implies")


def test_label_outside_the_classes_is_refused():
    x, y = _samples(6)
    message = bytearray(encode_samples(x, y, SENDER, 8, 10).tobytes())
    message[HEADER + 3] = 10
    _refused(message, "CRC32")  # as it arrives: corruption
    _fix_labels_crc(message)
    _refused(message, r"outside 0\.\.9")  # a sender that means it


def test_flipped_feature_bit_fails_the_packet_crc():
    x, y = _samples(6)
    message = bytearray(encode_samples(x, y, SENDER, 8, 10).tobytes())
    message[-1] ^= 0x10
    _refused(message, "CRC32")


def test_stale_sequence_number_is_refused():
    x, y = _samples(3)
    message = encode_samples(x, y, SENDER, 8, 10, sequence=4)
    _decode(message, sequence=4)
    _refused(message, "sequence number 4, expected 5", sequence=5)


def test_nan_features_are_refused_by_the_sender():
    # caught where they are, so the error names the node whose shard is bad, not its neighbours
    x, y = _samples(3)
    x[1, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=f"node {SENDER}'s shard holds NaN"):
        encode_samples(x, y, SENDER, 8, 10)


def test_infinite_scale_is_refused():
    x, y = _samples(3)
    message = bytearray(encode_samples(x, y, SENDER, 8, 10).tobytes())
    step_at = _labels_end(np.frombuffer(bytes(message), dtype=np.uint8)) + PACKET_HEADER + 4  # one block
    struct.pack_into("<f", message, step_at, np.float32(3e38))
    _fix_packet_crc(message)
    _refused(message, "NaN or infinite")


def _decodes_or_refuses(message: bytes) -> None:
    """Decode ``message``: a WireError naming the sender, or samples of the promised shape and range."""
    try:
        x, y = _decode(np.frombuffer(message, dtype=np.uint8).copy())
    except WireError as exc:
        assert f"node {SENDER}" in str(exc), f"WireError does not name the sender: {exc}"
        return
    assert x.dtype == np.float32 and x.shape == (len(y), *SHAPE) and len(y) <= 32
    assert np.all(np.isfinite(x)) and np.all((y >= 0) & (y < 10))


@FUZZ
@given(message=st.binary(max_size=3000))
def test_random_bytes_raise_only_wire_errors(message):
    _decodes_or_refuses(message)


@FUZZ
@given(message=st.binary(min_size=HEADER, max_size=HEADER + 64))
def test_random_bytes_behind_a_valid_magic_raise_only_wire_errors(message):
    _decodes_or_refuses(b"FGSD" + bytes([sample_packets.SAMPLE_VERSION]) + message[5:])


@FUZZ
@given(
    count=st.integers(0, 12),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    fix_crcs=st.booleans(),
)
def test_mutated_valid_messages_raise_only_wire_errors(count, edits, fix_crcs):
    x, y = _samples(count)
    message = bytearray(encode_samples(x, y, SENDER, 8, 10).tobytes())
    for offset, value in edits:
        message[offset % len(message)] = value
    if fix_crcs:  # reach the checks behind the CRCs: a sender that means what it sends
        try:
            _fix_labels_crc(message)
            _fix_packet_crc(message)
        except struct.error:  # the count now points past the end: nothing to fix
            pass
    _decodes_or_refuses(bytes(message))
