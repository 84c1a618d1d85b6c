"""The root ``fedgossip`` group: version, ``--debug``, and how errors reach the user."""

from __future__ import annotations

import gc
import logging
import os

import click

from fedgossip import __version__
from fedgossip.cli.bench import bench
from fedgossip.cli.data import data
from fedgossip.cli.partition import partition
from fedgossip.cli.plot import plot
from fedgossip.cli.plugins import plugins
from fedgossip.cli.summary import compare, runs, summary
from fedgossip.cli.topology import topology
from fedgossip.cli.train import train
from fedgossip.errors import FedGossipError

__all__ = ["main", "cli"]


class FedGossipGroup(click.Group):
    """A click group that turns a ``FedGossipError`` into one red line and exit code 1.

    Anything else is a bug and keeps its traceback. ``--debug`` (or
    ``FEDGOSSIP_DEBUG=1``) shows the traceback of user errors too.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FedGossipError as exc:
            if _debug_enabled(ctx):
                raise
            from fedgossip.report.console import print_error

            print_error(str(exc))
            ctx.exit(1)


def _debug_enabled(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("FEDGOSSIP_DEBUG", "") not in ("", "0")


@click.group(cls=FedGossipGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fedgossip")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
def cli(debug: bool) -> None:
    """Federated and decentralized learning over MPI, with quantized gossip.

    \b
    Examples:
      fedgossip plugins compressors
      fedgossip data list
      fedgossip partition create digits --nodes 64 --scheme dirichlet:alpha=0.1 --out datasets/digits-64
      fedgossip partition show datasets/digits-64
      mpirun -n 64 fedgossip train --data datasets/digits-64 --algorithm swarm
      fedgossip summary results/<run>
      fedgossip plot results/<run> --x bytes -o accuracy.png
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s", force=debug)


cli.add_command(data)
cli.add_command(partition)
cli.add_command(topology)
cli.add_command(train)
cli.add_command(summary)
cli.add_command(runs)
cli.add_command(compare)
cli.add_command(bench)
cli.add_command(plugins)
cli.add_command(plot)


def main() -> None:
    """Run the CLI (the ``fedgossip`` console script)."""
    try:
        cli(prog_name="fedgossip")
    finally:
        # The interpreter's last collections at exit walk every object torch made: 0.3-0.7 s of CPU
        # per process, paid 64 times over when 64 ranks end together on a few cores. Frozen objects
        # are skipped; the operating system reclaims them with the process.
        gc.freeze()
