"""``fedgossip topology show`` as a user runs it, good input and bad."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from fedgossip.cli.main import FedGossipGroup
from fedgossip.cli.topology import topology


@pytest.fixture
def run_topology(monkeypatch):
    """Run ``fedgossip topology ARGS...`` under the root group's error handling, 80 columns wide.

    The group is mounted on a root of its own, so these tests do not depend on how
    ``fedgossip.cli.main`` wires its commands.
    """
    monkeypatch.setenv("COLUMNS", "80")
    root = FedGossipGroup(name="fedgossip", commands={"topology": topology})

    def run(*args):
        return CliRunner().invoke(root, ["topology", *map(str, args)], catch_exceptions=False)

    return run


def widest(output: str) -> int:
    return max(len(line) for line in output.splitlines())


def test_show_small_torus_lists_neighbours(run_topology):
    result = run_topology("show", "torus", "--nodes", 12)
    assert result.exit_code == 0, result.output
    for expected in ("torus", "24", "4 (every node)", "3 hops", "spectral gap", "0.4", "neighbours"):
        assert expected in result.output
    assert "1 3 4 8" in result.output  # node 0 of the 3×4 grid
    assert widest(result.output) <= 80


def test_show_large_graph_skips_neighbour_lists_and_fits_80_columns(run_topology):
    result = run_topology("show", "erdos-renyi:p=0.1", "-n", 200, "--seed", 4)
    assert result.exit_code == 0, result.output
    assert "neighbour lists are shown for up to 32 nodes" in result.output
    assert widest(result.output) <= 80


def test_complete_graph_neighbours_are_written_as_ranges(run_topology):
    result = run_topology("show", "complete", "-n", 32)
    assert "1–31" in result.output and "0 2–31" in result.output
    assert "one gossip round averages exactly" in result.output
    assert widest(result.output) <= 80


def test_json_is_the_topology_stats(run_topology):
    result = run_topology("show", "ring", "-n", 8, "--json")
    stats = json.loads(result.stdout)
    assert stats["spec"] == "ring" and stats["nodes"] == 8 and stats["edges"] == 8
    assert stats["degree_min"] == stats["degree_max"] == 2 and stats["diameter"] == 4
    assert stats["spectral_gap"] == pytest.approx(1 - (1 / 3 + 2 / 3 * math.cos(2 * math.pi / 8)))


def test_seed_picks_the_random_graph_and_has_a_topology_seed_alias(run_topology):
    def edges(*args):
        return json.loads(run_topology("show", "random-regular:degree=3", "-n", 20, "--json", *args).stdout)

    assert edges("--seed", 1) == edges("--topology-seed", 1)
    assert edges("--seed", 1)["spec"] == "random-regular:degree=3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["torus", "-n", 13], "13 is prime; use ring for 13 nodes, or run 12 or 14 nodes"),
        (["random-regular:degree=3", "-n", 7], "n·degree must be even"),
        (["hypercube", "-n", 6], "power-of-two"),
        (["erdos-renyi:p=0.01", "-n", 30], "raise p"),
        (["moebius", "-n", 4], "'moebius'; known: complete, erdos-renyi, exponential"),
        (["ring:width=2", "-n", 4], "unknown parameter 'width'"),
    ],
)
def test_bad_input_is_one_red_line_and_exit_1(run_topology, args, message):
    result = run_topology("show", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "\n" not in result.stderr.strip()


def test_disconnected_edge_list_is_refused(run_topology, tmp_path):
    path = tmp_path / "halves.txt"
    path.write_text("0 1\n2 3\n")
    result = run_topology("show", f"file:path={path}", "-n", 4)
    assert result.exit_code == 1
    assert "disconnected" in result.stderr and "add edges joining the components" in result.stderr


def test_nodes_is_required_and_positive(run_topology):
    assert run_topology("show", "ring").exit_code == 2
    assert run_topology("show", "ring", "-n", 0).exit_code == 2


@pytest.mark.parametrize("command", [[], ["show"]])
def test_help_has_an_example(run_topology, command):
    result = run_topology(*command, "--help")
    assert result.exit_code == 0 and "Example" in result.output


def test_a_gap_too_small_to_resolve_is_said_not_drawn_as_a_number(run_topology, monkeypatch):
    from fedgossip.topology import mixing

    monkeypatch.setattr(mixing, "DENSE_MAX_NODES", 8)
    monkeypatch.setattr(mixing, "_SPARSE_ITERATIONS", 1)  # Lanczos gives up at once: no gap
    result = run_topology("show", "ring", "--nodes", 400)
    assert result.exit_code == 0, result.output
    assert "not resolved" in result.output and "mixing" not in result.output
    assert widest(result.output) <= 80
