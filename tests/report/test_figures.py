"""Figures of a run summary: counts print as integers, measured values with their decimals."""

import re

from rich.console import Console

from fedgossip.report.figures import MISSING, count
from fedgossip.report.run import _traffic

COMMUNICATION = {
    "bytes_sent_per_rank_mean": 1000,
    "bytes_sent_per_rank_max": 1000,
    "bytes_sent_total": 2000,
    "fp32_equivalent_bytes": 2000,
    "compression_ratio": 1.0,
}
GOSSIP = {
    "interactions_per_rank_mean": 20.0,
    "offers_served_per_rank_mean": 19.5,
    "staleness_steps_mean": 1.25,
    "idle_s_mean": 0.5,
}


def test_an_integer_valued_count_prints_without_decimals():
    assert (count(20.0), count(20), count(1234567.0), count(0.0)) == ("20", "20", "1,234,567", "0")


def test_a_fractional_mean_of_counts_keeps_its_decimals():
    assert (count(19.5), count(2 / 3)) == ("19.50", "0.67")
    assert count(None) == MISSING


def test_a_count_that_is_not_a_number_shows_as_missing():
    assert [count(v) for v in ("x", [1], True)] == [MISSING] * 3
    assert (count(float("nan")), count(float("inf"))) == ("nan", "inf")


def test_gossip_counts_in_the_summary_print_as_integers():
    console = Console(record=True, width=120)
    console.print(_traffic(COMMUNICATION, GOSSIP))
    text = console.export_text()
    assert re.search(r"interactions +20 per rank \(mean\)", text)
    assert re.search(r"offers served +19\.50 per rank \(mean\)", text)
