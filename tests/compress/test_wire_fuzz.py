"""Corrupted packets: the receiver raises ``WireError`` naming the sender, or decodes harmlessly.

Every installed compressor frames a real packet; hypothesis then damages its
header, its length or its payload and feeds it to ``Codec.unpack``. Any other
exception, a hang or an allocation the header talked the receiver into is a bug.
A run damages at least BUDGET = 10,000 packets (about 13 s of CPU time).
"""

from __future__ import annotations

import functools
import math
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedgossip.compress.wire as wire
from fedgossip.comm.codec import Codec
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.errors import WireError

SPECS = [
    "none",
    "fp16",
    "bf16",
    "qsgd:bits=3,block=64",
    "qsgd:bits=9",
    "uniform:bits=3,rounding=stochastic",
    "sign:block=64",
    "topk:ratio=0.01",  # positions as a list at COUNT values
    "topk:ratio=0.1",  # positions as a bitmap at COUNT values
    "randk:ratio=0.3",
]
SENDER, RECEIVER, COUNT, SEQUENCE = 5, 1, 1000, 7
BUDGET = 10_000  # damaged packets per run, over every fuzz test and parametrization

# Header fields as (offset, struct format), after wire.py's "<4sBBHQIIQQId" layout.
FIELDS = {
    "version": (4, "<B"),
    "compressor": (6, "<H"),
    "count": (8, "<Q"),
    "block": (16, "<I"),
    "sender": (20, "<I"),
    "sequence": (24, "<Q"),
    "length": (32, "<Q"),
    "crc32": (40, "<I"),
}
_CRC = FIELDS["crc32"]


def fuzz(examples: int) -> Callable[[Callable], Callable]:
    """Run a hypothesis test on ``examples`` packets per parametrization, and say so to the budget test."""

    def decorate(test: Callable) -> Callable:
        limits = settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        test = limits(test)
        test.fuzz_examples = examples
        return test

    return decorate


@functools.cache
def _packet(spec: str) -> tuple[Codec, bytes, np.ndarray]:
    """Return (receiving codec, framed packet from SENDER, its clean decoding as float32 bits)."""
    compressor = COMPRESSORS.create(spec)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=COUNT).astype(np.float32))
    buffer, _ = Codec(compressor, SENDER, COUNT, seed=1).pack(x, sequence=SEQUENCE)
    receiver = Codec(compressor, RECEIVER, COUNT)
    clean = receiver.unpack(buffer, SENDER, SEQUENCE)
    return receiver, buffer.tobytes(), clean.numpy().view(np.uint32).copy()


def _receive(receiver: Codec, packet: bytes | bytearray) -> np.ndarray | None:
    """Return the decoded bits, or None when the packet is refused with a WireError naming the sender."""
    try:
        decoded = receiver.unpack(np.frombuffer(bytes(packet), dtype=np.uint8).copy(), SENDER, SEQUENCE)
    except WireError as exc:
        assert f"node {SENDER}" in str(exc), f"WireError does not name the sender: {exc}"
        return None
    assert decoded.dtype == torch.float32 and decoded.shape == (COUNT,)
    return decoded.numpy().view(np.uint32)


def _put(packet: bytearray, field: tuple[int, str], value: int) -> None:
    offset, fmt = field
    struct.pack_into(fmt, packet, offset, value % 256 ** struct.calcsize(fmt))


def _fix_crc(packet: bytearray) -> None:
    _put(packet, _CRC, zlib.crc32(packet[HEADER_SIZE:]))


def test_every_installed_compressor_is_fuzzed():
    listed = {spec.partition(":")[0] for spec in SPECS}
    assert set(COMPRESSORS.available()) <= listed, "add a spec of the new compressor to SPECS"


@pytest.mark.parametrize("spec", SPECS)
@fuzz(200)
@given(
    edits=st.lists(st.tuples(st.integers(0, HEADER_SIZE - 1), st.integers(0, 255)), min_size=1, max_size=6)
)
def test_header_with_overwritten_bytes_is_refused_or_harmless(spec, edits):
    receiver, packet, clean = _packet(spec)
    damaged = bytearray(packet)
    for offset, value in edits:
        damaged[offset] = value
    decoded = _receive(receiver, damaged)
    # Only the kind byte and the delivery time go unchecked here (their users check them):
    # whatever gets through must decode as the original did.
    assert decoded is None or np.array_equal(decoded, clean)


@pytest.mark.parametrize("spec", SPECS)
@fuzz(200)
@given(
    field=st.sampled_from(sorted(FIELDS)),
    value=st.one_of(st.integers(0, 2**16), st.sampled_from([2**31, 2**32 - 1, 2**63, 2**64 - 1])),
)
def test_header_field_with_another_value_is_refused_or_harmless(spec, field, value):
    receiver, packet, clean = _packet(spec)
    damaged = bytearray(packet)
    _put(damaged, FIELDS[field], value)
    decoded = _receive(receiver, damaged)
    assert decoded is None or (damaged == bytearray(packet) and np.array_equal(decoded, clean))


@pytest.mark.parametrize("consistent", [False, True], ids=["as-is", "length-and-crc-fixed"])
@pytest.mark.parametrize("spec", SPECS)
@fuzz(200)
@given(data=st.data())
def test_truncated_or_extended_packet_is_refused(spec, consistent, data):
    receiver, packet, _ = _packet(spec)
    size = data.draw(st.integers(0, len(packet) + 64).filter(lambda s: s != len(packet)), label="size")
    damaged = bytearray(packet[:size])
    damaged += data.draw(st.binary(min_size=size - len(damaged), max_size=size - len(damaged)), label="tail")
    if consistent and size >= HEADER_SIZE:
        # A header that agrees with the bytes that arrived: the compressor's own size check must catch it.
        _put(damaged, FIELDS["length"], size - HEADER_SIZE)
        _fix_crc(damaged)
    assert _receive(receiver, damaged) is None


@pytest.mark.parametrize("spec", SPECS)
@fuzz(200)
@given(data=st.data())
def test_arbitrary_payload_with_a_valid_crc_is_refused_or_decoded(spec, data):
    receiver, packet, _ = _packet(spec)
    length = len(packet) - HEADER_SIZE
    payload = data.draw(st.binary(min_size=length, max_size=length), label="payload")
    damaged = bytearray(packet[:HEADER_SIZE]) + payload
    _fix_crc(damaged)
    _receive(receiver, damaged)  # asserts: a WireError naming the sender, or COUNT float32 values


def test_fuzz_budget_covers_ten_thousand_packets():
    fuzzed = [test for test in globals().values() if hasattr(test, "fuzz_examples")]
    total = sum(test.fuzz_examples * _parametrizations(test) for test in fuzzed)
    assert len(fuzzed) >= 4 and total >= BUDGET, f"{total} packets fuzzed per run, fewer than {BUDGET}"


def _parametrizations(test: Callable) -> int:
    """Return how many cases ``@pytest.mark.parametrize`` makes of ``test``."""
    marks = getattr(test, "pytestmark", [])
    return math.prod(len(mark.args[1]) for mark in marks if mark.name == "parametrize")


@pytest.mark.parametrize("claimed", ["huge-length", "one-byte-too-many", "huge-count", "count-plus-one"])
@pytest.mark.parametrize("spec", SPECS)
def test_payload_beyond_the_limit_is_refused_before_it_is_read(spec, claimed, monkeypatch):
    compressor = COMPRESSORS.create(spec)
    receiver = Codec(compressor, RECEIVER, COUNT)
    packet, _ = Codec(compressor, SENDER, COUNT).pack(torch.ones(COUNT), sequence=SEQUENCE)
    limit = receiver.max_packet - HEADER_SIZE
    damaged = bytearray(packet.tobytes())
    if claimed == "huge-length":  # a header that asks for 4 EiB, on a packet of normal size
        _put(damaged, FIELDS["length"], 2**62)
        refusal = rf"exceeds the {limit} allowed"
    elif claimed == "one-byte-too-many":  # a header telling the truth about a packet one byte too long
        damaged += bytearray(limit + 1 - (len(packet) - HEADER_SIZE))
        _put(damaged, FIELDS["length"], limit + 1)
        _fix_crc(damaged)
        refusal = rf"exceeds the {limit} allowed"
    else:  # a header that asks for 2**62 (or COUNT + 1) values, on the payload of COUNT values
        claim = 2**62 if claimed == "huge-count" else COUNT + 1
        _put(damaged, FIELDS["count"], claim)
        refusal = rf"{claim} values, expected {COUNT}"
    buffer = np.frombuffer(bytes(damaged), dtype=np.uint8).copy()
    read = []
    monkeypatch.setattr(wire, "zlib", SimpleNamespace(crc32=lambda data: read.append(len(data)) or 0))
    monkeypatch.setattr(compressor, "decode", lambda *args, **kwargs: read.append("decode"))
    # torch allocates outside tracemalloc's view: refuse any tensor larger than the model outright.
    monkeypatch.setattr(torch, "empty", _at_most(COUNT, torch.empty, read))
    tracemalloc.start()
    try:
        with pytest.raises(WireError, match=rf"node {SENDER}.*{refusal}"):
            receiver.unpack(buffer, SENDER, SEQUENCE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == [], "the payload was read, or a tensor allocated, before the header was checked"
    assert peak < 64 * 1024, f"refusing the packet allocated {peak} bytes"


def _at_most(count: int, empty: Callable, read: list) -> Callable:
    """Return ``empty`` that records and refuses a request for more than ``count`` values."""

    def guarded(*size, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        if math.prod(shape) > count:
            read.append(f"torch.empty{shape}")
            raise MemoryError(f"asked for a tensor of {math.prod(shape)} values")
        return empty(*size, **kwargs)

    return guarded
