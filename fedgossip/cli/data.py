"""``fedgossip data list|download``: the dataset sources and their files."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["data", "download_for_spec"]


@click.group()
def data() -> None:
    """List dataset sources and fetch the files of downloadable ones.

    \b
    Examples:
      fedgossip data list
      fedgossip data download mnist --dir data/mnist
    """


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
def list_sources(as_json: bool) -> None:
    """List the installed dataset sources with their parameters.

    \b
    Example:
      fedgossip data list --json
    """
    from fedgossip.data.sources.base import SOURCES
    from fedgossip.report.console import stdout
    from fedgossip.report.plugins import render_plugins

    rows = SOURCES.describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    render_plugins("dataset sources", rows, stdout)


@data.command()
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to put the files in (created if needed).",
)
@click.option("--url", help="Base URL to fetch from instead of the built-in mirror.")
@click.option(
    "--checksums",
    multiple=True,
    metavar="NAME=SHA256",
    help="Expected SHA-256 of a file, replacing the built-in one (repeat for several files).",
)
def download(name: str, directory: Path, url: str | None, checksums: tuple[str, ...]) -> None:
    """Fetch the files of source NAME into --dir, checking every SHA-256.

    Files already present with the right checksum are kept; a file whose
    checksum differs is deleted and the command fails.

    \b
    Examples:
      fedgossip data download mnist --dir data/mnist
      fedgossip data download cifar10 --dir data/cifar10 --url http://mirror.local/cifar/ \\
          --checksums cifar-10-binary.tar.gz=c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd
    """
    from fedgossip.report.console import stdout

    paths = _download(name, directory, url, _read_checksums(checksums))
    for path in paths:
        stdout.print(f"[green]ok[/] {path}")


def download_for_spec(spec: str) -> None:
    """Download the files a source spec such as ``mnist:path=DIR`` needs into its ``path``."""
    from fedgossip.errors import ConfigError
    from fedgossip.specs import parse_spec

    parsed = parse_spec(spec)
    if "path" not in parsed.args:
        raise ConfigError(f"--download needs a source with a path, e.g. {parsed.name}:path=DIR")
    _download(parsed.name, Path(parsed.args["path"]), None, None)


def _download(name: str, directory: Path, url: str | None, checksums: dict | None) -> list[Path]:
    from fedgossip.data.sources.download import download as fetch_source
    from fedgossip.report.progress import byte_progress

    with byte_progress(f"downloading {name}") as progress:
        return fetch_source(name, directory, base_url=url, checksums=checksums, progress=progress)


def _read_checksums(pairs: tuple[str, ...]) -> dict[str, str] | None:
    if not pairs:
        return None
    table = {}
    for pair in pairs:
        name, eq, digest = pair.partition("=")
        if not (eq and name and digest):
            raise click.BadParameter(f"expected NAME=SHA256, got {pair!r}", param_hint="--checksums")
        table[name.strip()] = digest.strip().lower()
    return table
