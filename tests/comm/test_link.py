"""Network emulation: ``--link`` parsing, the delay model, and holding a message until its delivery."""

import math

import pytest

from fedgossip.comm.link import Uplink, hold_until
from fedgossip.errors import ConfigError
from fedgossip.settings.link_spec import Link, parse_link


@pytest.mark.parametrize(
    ("text", "bits_per_second"),
    [
        ("3bit", 3),
        ("3kbit", 3e3),
        ("3Mbit", 3e6),
        ("3Gbit", 3e9),
        ("3B", 24),
        ("3kB", 24e3),
        ("3MB", 24e6),
        ("3GB", 24e9),
        ("3mbit", 3e6),  # tc's spelling: m is mega, never milli, for a bandwidth
        ("3KBIT", 3e3),
        ("3MB/s", 24e6),
        ("2.5 Mbit", 2.5e6),
        ("1e3kbit", 1e6),
    ],
)
def test_bandwidth_units_are_decimal_and_bytes_are_eight_bits(text, bits_per_second):
    link = parse_link(f"bandwidth={text}")
    assert link.bandwidth_bps == pytest.approx(bits_per_second, rel=1e-12)
    assert link.latency_s == 0


@pytest.mark.parametrize(("text", "seconds"), [("7us", 7e-6), ("7ms", 7e-3), ("7s", 7.0), ("0ms", 0.0)])
def test_latency_units(text, seconds):
    link = parse_link(f"latency={text}")
    assert link.latency_s == pytest.approx(seconds, rel=1e-12)
    assert link.bandwidth_bps == math.inf


@pytest.mark.parametrize("text", [None, "", "  ", "none", "None"])
def test_no_spec_means_no_emulation(text):
    assert parse_link(text) is None


def test_keys_take_spaces_and_any_order():
    assert parse_link(" latency = 20ms , bandwidth = 10Mbit ") == Link(10e6, 0.02)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("bandwidth=10Mbit,latency=20ms", "bandwidth=10Mbit,latency=20ms"),
        ("latency=20ms,bandwidth=10mbit", "bandwidth=10Mbit,latency=20ms"),
        ("bandwidth=10MB", "bandwidth=80Mbit,latency=0s"),
        ("bandwidth=0.1MB,latency=0.25ms", "bandwidth=800kbit,latency=250us"),
        ("latency=1.5s", "latency=1.5s"),
        ("bandwidth=1500bit,latency=0.002s", "bandwidth=1.5kbit,latency=2ms"),
    ],
)
def test_spec_is_canonical(text, canonical):
    assert parse_link(text).spec == canonical


@pytest.mark.parametrize(
    "text",
    [
        "bandwidth=10Mbit,latency=20ms",
        "bandwidth=0.1MB,latency=0.0003s",
        "bandwidth=123456789.123bit",
        "bandwidth=1e-5bit,latency=7us",
        "bandwidth=1e30GB",
        "latency=0s",
        "bandwidth=3.3kB,latency=1.1ms",
    ],
)
def test_spec_parses_back_to_an_equal_link(text):
    link = parse_link(text)
    assert parse_link(link.spec) == link


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bandwidth=10", "bandwidth='10': needs a unit (bit, kbit, Mbit, Gbit, B, kB, MB, GB per second)"),
        ("latency=20", "latency='20': needs a unit (us, ms, s)"),
        ("bandwidth=10Tbit", "unknown unit 'Tbit'"),
        ("latency=10ks", "unknown unit 'ks' (units: us, ms, s)"),
        ("bandwidth=10Mb", "unit 'Mb' is ambiguous: write bit for bits or B for bytes"),
        ("bandwidth=10Mbps", "unit 'Mbps' is ambiguous"),
        ("speed=10Mbit", "unknown key 'speed' (keys: bandwidth, latency)"),
        ("bandwidth=-1Mbit", "bandwidth='-1Mbit': must be a finite number > 0"),
        ("bandwidth=0Mbit", "bandwidth='0Mbit': must be a finite number > 0"),
        ("bandwidth=nanMbit", "must be a finite number > 0"),
        ("bandwidth=infMbit", "leave bandwidth out for an unlimited link"),
        ("latency=nanms", "latency='nanms': must be a finite number >= 0"),
        ("latency=-1ms", "latency='-1ms': must be a finite number >= 0"),
        ("bandwidth=", "bandwidth='': empty value"),
        ("bandwidth=fastMbit", "expected a number and a unit"),
        ("bandwidth=1Mbit,bandwidth=2Mbit", "bandwidth given twice"),
        ("10Mbit", "expected key=value, got '10Mbit'"),
        ("bandwidth=1Mbit,", "empty item between commas"),
    ],
)
def test_bad_spec_says_what_is_wrong_and_shows_an_example(text, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_link(text)
    message = str(caught.value)
    assert message.startswith(f"invalid --link {text!r}: ")
    assert fragment in message
    assert message.endswith("e.g. bandwidth=10Mbit,latency=20ms, or none")


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        parse_link("bw=3,latency=5,bandwidth=nanMbit,bandwidth=1Mb")
    message = str(caught.value)
    for fragment in ("unknown key 'bw'", "latency='5': needs a unit", "bandwidth='nanMbit'", "given twice"):
        assert fragment in message


def test_link_checks_its_numbers_at_construction():
    with pytest.raises(ConfigError, match=r"bandwidth must be > 0.*; latency must be a finite number >= 0"):
        Link(bandwidth_bps=0.0, latency_s=-1.0)
    with pytest.raises(ConfigError, match="bandwidth"):
        Link(bandwidth_bps=math.nan, latency_s=0.0)
    with pytest.raises(ConfigError, match="latency"):
        Link(bandwidth_bps=1e6, latency_s=math.inf)


def test_delay_is_latency_plus_bits_over_bandwidth():
    link = parse_link("bandwidth=10Mbit,latency=20ms")
    # 1,250,000 bytes = 10,000,000 bits: one second at 10 Mbit/s, plus 20 ms.
    assert link.delay(1_250_000) == pytest.approx(1.02)
    assert link.delay(0) == pytest.approx(0.02)
    assert link.deliver_at(100.0, 1_250_000) == pytest.approx(101.02)


def test_unlimited_bandwidth_adds_latency_only():
    link = parse_link("latency=5ms")
    assert link.delay(10**12) == pytest.approx(0.005)


# A link of 1 MB/s (8 Mbit/s) and 1 ms: a 1,000,000-byte buffer takes one second to transmit.
@pytest.mark.parametrize(("ranks", "seconds"), [(1, 0.0), (2, 2 * 0.001 + 1.0), (8, 14 * 0.001 + 14 / 8)])
def test_ring_allreduce_time(ranks, seconds):
    # 2(n−1) latencies, and 2(n−1)/n of the buffer through each uplink.
    link = Link(bandwidth_bps=8e6, latency_s=0.001)
    assert link.allreduce_time(1_000_000, ranks) == pytest.approx(seconds)


@pytest.mark.parametrize(("ranks", "seconds"), [(1, 0.0), (2, 1.001), (8, 7 * 1.001)])
def test_ring_allgather_time(ranks, seconds):
    # n−1 steps, each one latency and one rank's block.
    link = Link(bandwidth_bps=8e6, latency_s=0.001)
    assert link.allgather_time(1_000_000, ranks) == pytest.approx(seconds)


def test_collective_models_refuse_an_empty_world_and_negative_sizes():
    link = Link(bandwidth_bps=8e6, latency_s=0.001)
    with pytest.raises(ValueError, match="ranks >= 1"):
        link.allreduce_time(10, 0)
    with pytest.raises(ValueError, match="nbytes >= 0"):
        link.allgather_time(-1, 4)


def test_uplink_sends_a_ranks_messages_one_after_another():
    uplink = Uplink(Link(bandwidth_bps=8e6, latency_s=0.001))  # 1,000,000 bytes take 1 s
    first = uplink.transmit(sent_at=10.0, nbytes=1_000_000)
    second = uplink.transmit(sent_at=10.0, nbytes=500_000)  # waits for the first to leave
    assert first == pytest.approx(11.001)
    assert second == pytest.approx(11.5 + 0.001)
    assert uplink.free_at == pytest.approx(11.5)


def test_idle_uplink_delivers_like_the_link():
    link = Link(bandwidth_bps=8e6, latency_s=0.001)
    uplink = Uplink(link)
    uplink.transmit(sent_at=10.0, nbytes=1_000_000)
    later = uplink.transmit(sent_at=20.0, nbytes=1_000_000)  # the link went idle at 11
    assert later == pytest.approx(link.deliver_at(20.0, 1_000_000))


class FakeClock:
    """A wall clock that only moves when someone sleeps."""

    def __init__(self, now: float):
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_hold_until_sleeps_to_a_future_deadline():
    clock = FakeClock(now=100.0)
    waited = hold_until(100.25, clock=clock.time, sleep=clock.sleep)
    assert waited == pytest.approx(0.25)
    assert clock.sleeps == [pytest.approx(0.25)]
    assert clock.now == pytest.approx(100.25)


@pytest.mark.parametrize("deadline", [99.0, 100.0])
def test_hold_until_a_past_deadline_does_not_sleep(deadline):
    clock = FakeClock(now=100.0)
    assert hold_until(deadline, clock=clock.time, sleep=clock.sleep) == 0.0
    assert clock.sleeps == []
