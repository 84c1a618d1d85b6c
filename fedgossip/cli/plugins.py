"""``fedgossip plugins [FAMILY]``: every installed plugin, its parameters and who provides it."""

from __future__ import annotations

import json

import click

from fedgossip.families import FAMILIES

__all__ = ["plugins"]


@click.command(
    help=f"""List the installed plugins of every family, or of FAMILY only.

    FAMILY is one of: {", ".join(FAMILIES)}. Each plugin is shown with its
    parameters and their defaults, as a spec takes them (name:key=value,...),
    and with the distribution that provides it when that is not fedgossip.
    A name that cannot be used, because two distributions claim it or its
    package fails to import, is shown in red with what to do about it.

    \b
    Examples:
      fedgossip plugins
      fedgossip plugins compressors
      fedgossip plugins partitioners --json | jq '.partitioners.plugins[].name'
    """
)
@click.argument("family", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON, keyed by family.")
def plugins(family: str | None, as_json: bool) -> None:
    from fedgossip.families import describe_family
    from fedgossip.report.console import stdout
    from fedgossip.report.plugins import render_families

    families = {name: describe_family(name) for name in ([family] if family else FAMILIES)}
    if as_json:
        click.echo(json.dumps(families, indent=2, default=str))
        return
    render_families(families, stdout)
