"""Option types and helpers shared by several commands."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["NODES", "PluginSpecOption", "interrupt_on_sigterm"]

NODES = click.IntRange(min=1)


class PluginSpecOption(click.Option):
    """An option taking a plugin spec whose help lists every plugin of its family, read from the registry.

    The list is built when help is shown, not at import: a family's plugins may import heavy
    packages (scikit-learn for ``dispatch``), and a hand-written list goes stale as plugins are added.
    """

    def __init__(self, *args, family: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.family = family
        self.lead = self.help or ""

    def get_help_record(self, ctx: click.Context):
        from fedgossip.families import plugin_choices

        choices = "; ".join(plugin_choices(self.family))
        more = f"`fedgossip plugins {self.family}` says more"
        self.help = f"{self.lead} One of, with defaults: {choices}. {more}."
        return super().get_help_record(ctx)


@contextmanager
def interrupt_on_sigterm(signum: int = signal.SIGTERM) -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt inside the block.

    Python's default SIGTERM ends the process without running ``finally``
    blocks; raising instead lets atomic writers delete their temporary files,
    so a killed ``partition create`` (Slurm preemption, ``timeout``) leaves nothing.
    """

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        signal.signal(signum, previous)
