"""The header fields the wire does not check itself: the packet's kind and its emulated delivery time."""

import math

import numpy as np
import pytest

from fedgossip.compress.base import Packet
from fedgossip.compress.wire import HEADER_SIZE, delivery_time, frame, packet_kind, stamp_delivery, unframe


def _framed(kind: int = 0) -> np.ndarray:
    return frame(Packet(count=2, payload=np.arange(8, dtype=np.uint8)), 1, sender=3, sequence=4, kind=kind)


def test_kind_and_delivery_time_travel_in_the_header():
    buffer = _framed(kind=2)
    assert packet_kind(buffer) == 2 and delivery_time(buffer) == 0.0  # unstamped: deliver at once
    stamp_delivery(buffer, 1234.5)
    header, packet = unframe(buffer, 3, 1, 2, 8, sequence=4)
    assert (header.kind, header.deliver_at) == (2, 1234.5)
    assert np.array_equal(packet.payload, np.arange(8))  # the stamp is outside the checked payload


@pytest.mark.parametrize("stamped", [math.nan, math.inf, -5.0])
def test_a_meaningless_delivery_time_reads_as_deliver_at_once(stamped):
    buffer = _framed()
    stamp_delivery(buffer, stamped)
    assert delivery_time(buffer) == 0.0


def test_a_buffer_shorter_than_the_header_has_no_kind_and_no_time():
    short = np.zeros(HEADER_SIZE - 1, dtype=np.uint8)
    assert packet_kind(short) == -1 and delivery_time(short) == 0.0
