"""``fedgossip partition create|show``: cut a dataset into per-node shards and look at them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from fedgossip.cli.options import NODES, PluginSpecOption, interrupt_on_sigterm

__all__ = ["partition"]


@click.group()
def partition() -> None:
    """Make and inspect partitions: one HDF5 shard per node plus a test set.

    \b
    Examples:
      fedgossip partition create digits --nodes 64 --scheme dirichlet:alpha=0.1 --out datasets/digits-64
      fedgossip partition show datasets/digits-64
    """


@partition.command()
@click.argument("source")
@click.option("--nodes", "-n", type=NODES, required=True, help="Number of nodes (devices), one shard each.")
@click.option(
    "--scheme",
    cls=PluginSpecOption,
    family="partitioners",
    default="dirichlet:alpha=0.5",
    show_default=True,
    help="Partitioner spec, name:key=value,...",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of the test hold-out and the split.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Partition directory to create [default: datasets/<source>-<nodes>].",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Share of samples held out for testing, for sources without a test split [default: 0.2].",
)
@click.option("--force", is_flag=True, help="Replace --out if it is an existing partition.")
@click.option(
    "--download", is_flag=True, help="Fetch the source's files into its path first (mnist, cifar10...)."
)
def create(
    source: str,
    nodes: int,
    scheme: str,
    seed: int,
    out: Path | None,
    test_fraction: float | None,
    force: bool,
    download: bool,
) -> None:
    """Split SOURCE across nodes and write a partition directory atomically.

    SOURCE is a dataset spec such as digits, synthetic:alpha=1,beta=1,
    mnist:path=DIR or csv:path=FILE,label=COLUMN (`fedgossip data list` shows all).
    A failed or interrupted run leaves nothing behind.

    \b
    Examples:
      fedgossip partition create digits --nodes 64 --scheme dirichlet:alpha=0.1 --out datasets/digits-64
      fedgossip partition create synthetic:alpha=1,beta=1 --nodes 30 --scheme natural
      fedgossip partition create mnist:path=data/mnist --download -n 100 --scheme shards:classes_per_node=2
    """
    from fedgossip.api.partition import create_partition, default_partition_dir
    from fedgossip.report.console import stdout
    from fedgossip.report.partition import render_partition
    from fedgossip.report.progress import stage_progress

    if download:
        from fedgossip.cli.data import download_for_spec

        download_for_spec(source)
    out = out or default_partition_dir(source, nodes)
    with interrupt_on_sigterm(signal.SIGTERM), stage_progress() as progress:
        manifest = create_partition(
            source,
            nodes,
            scheme=scheme,
            out=out,
            seed=seed,
            test_fraction=test_fraction,
            force=force,
            on_stage=progress.start,
            on_file=progress.advance,
        ).manifest
    rule = " + dispatch rule" if "dispatch.h5" in manifest.files else ""
    stdout.print(f"[green]wrote[/] {out} ({manifest.nodes} shards + test set{rule})")
    render_partition(manifest, out, stdout)


@partition.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of tables.")
@click.option(
    "--no-verify", is_flag=True, help="Skip checking and reading every file (faster on huge partitions)."
)
def show(directory: Path, as_json: bool, no_verify: bool) -> None:
    """Show a partition: sizes, label mix per node and heterogeneity.

    Every file's SHA-256 is checked against partition.json first, and every
    shard read; a missing, corrupted or unusable shard is an error naming it.

    \b
    Examples:
      fedgossip partition show datasets/digits-64
      fedgossip partition show datasets/digits-64 --json | jq .stats
    """
    from dataclasses import asdict

    from fedgossip.api.partition import Partition
    from fedgossip.report.console import stdout
    from fedgossip.report.partition import render_partition

    opened = Partition(directory, verify=not no_verify)
    if as_json:
        click.echo(json.dumps({**asdict(opened.manifest), "verified": not no_verify}, indent=2))
        return
    render_partition(opened.manifest, directory, stdout)
