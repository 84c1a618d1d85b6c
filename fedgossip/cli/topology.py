"""``fedgossip topology show``: build a communication graph and see how well it mixes."""

from __future__ import annotations

import json

import click

from fedgossip.cli.options import NODES

__all__ = ["topology"]


@click.group()
def topology() -> None:
    """Inspect communication graphs: who gossips with whom, and how fast models mix.

    \b
    Examples:
      fedgossip topology show ring --nodes 16
      fedgossip topology show random-regular:degree=4 --nodes 64 --seed 1
    """


@topology.command()
@click.argument("spec")
@click.option("--nodes", "-n", type=NODES, required=True, help="Number of nodes (MPI ranks) in the graph.")
@click.option(
    "--seed",
    "--topology-seed",
    "seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of random topologies (the same on every rank, so all build the same graph).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON instead of tables.")
def show(spec: str, nodes: int, seed: int, as_json: bool) -> None:
    """Show a graph's size, degrees, diameter and spectral gap.

    SPEC is a topology spec: ring, torus, complete, hypercube, exponential, star,
    random-regular:degree=D, erdos-renyi:p=P or file:path=FILE (one edge 'i j'
    per line). A disconnected graph is refused. The spectral gap is that of the
    Metropolis weights D-PSGD gossips with: the larger, the faster models agree.

    \b
    Examples:
      fedgossip topology show torus --nodes 12
      fedgossip topology show erdos-renyi:p=0.2 --nodes 32 --seed 7
      fedgossip topology show exponential -n 1024 --json | jq .spectral_gap
    """
    from fedgossip.report.console import stdout
    from fedgossip.report.topology import render_topology
    from fedgossip.topology import make_topology
    from fedgossip.topology.stats import topology_stats

    graph = make_topology(spec, nodes, seed)
    stats = topology_stats(graph)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    render_topology(graph, stats, stdout)
