"""The traffic matrix of real runs (metrics.h5 ``edges``): it adds up to bytes sent, on graph edges only."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fedgossip.records.metrics import read_edges, read_metrics

NODES = 4
CASES = {
    "dpsgd": ("--algorithm", "dpsgd"),
    "choco-qsgd4": ("--algorithm", "dpsgd", "--compressor", "qsgd:bits=4"),
    "swarm": ("--algorithm", "swarm"),
    "fedavg": ("--algorithm", "fedavg"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per case on a ring of 4 nodes hosted by one rank."""
    out = tmp_path_factory.mktemp("edge-runs")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, options in CASES.items():
        command = [sys.executable, "-m", "fedgossip", "train", "--nodes", str(NODES), "--rounds", "3"]
        command += [
            "--topology",
            "ring",
            "--model",
            "mlp:hidden=8",
            *options,
            "--out",
            str(out),
            "--name",
            name,
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_each_senders_edges_add_up_to_its_bytes_sent(runs, case):
    edges = read_edges(runs / case)
    sent = read_metrics(runs / case)["bytes_sent"][-1]
    per_sender = np.bincount(edges[:, 0], weights=edges[:, 2], minlength=NODES)
    assert np.array_equal(per_sender, sent)
    assert np.all(edges[:, 2] > 0) and np.all(edges[:, 0] != edges[:, 1])
    assert len({(s, r) for s, r, _ in edges.tolist()}) == len(edges)  # one row per directed pair


@pytest.mark.parametrize("case", ["dpsgd", "choco-qsgd4", "swarm"])
def test_on_a_ring_only_neighbours_exchange(runs, case):
    edges = read_edges(runs / case)
    pairs = {(s, r) for s, r, _ in edges.tolist()}
    ring = {(i, (i + d) % NODES) for i in range(NODES) for d in (1, -1)}
    assert pairs <= ring
    if case != "swarm":  # a synchronous gossip round talks to every neighbour
        assert pairs == ring


def test_fedavg_traffic_goes_through_its_server_only(runs):
    # fedavg's node 0 is its server (it holds no shard): every edge has it at one end.
    edges = read_edges(runs / "fedavg")
    pairs = {(s, r) for s, r, _ in edges.tolist()}
    assert pairs == {(0, n) for n in range(1, NODES)} | {(n, 0) for n in range(1, NODES)}


def test_summary_json_carries_the_whole_matrix_and_the_screen_its_busiest_edges(runs, monkeypatch):
    from click.testing import CliRunner

    from fedgossip.cli.main import cli

    monkeypatch.setenv("COLUMNS", "80")
    shown = CliRunner().invoke(cli, ["summary", str(runs / "swarm"), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["traffic_edges"] == read_edges(runs / "swarm").tolist()
    screen = CliRunner().invoke(cli, ["summary", str(runs / "swarm")]).output
    assert "busiest edges (8 of 8, model bytes sent)" in screen


def test_busiest_edges_come_first_with_their_share():
    from rich.console import Console

    from fedgossip.report.edges import busiest_edges_table

    edges = [[0, 1, 100], [1, 0, 700], [2, 1, 200], [1, 2, 0]]
    console = Console(width=80, record=True)
    console.print(busiest_edges_table(edges, top=2))
    lines = [line.split() for line in console.export_text().splitlines() if line.strip()]
    assert lines[0][:4] == ["busiest", "edges", "(2", "of"]
    assert lines[-2:] == [["1", "0", "700", "B", "70.0%"], ["2", "1", "200", "B", "20.0%"]]
    assert busiest_edges_table([]) is None
    assert busiest_edges_table([[0, 1, "7"]]) is None  # a hand-edited summary.json: shown as nothing
