"""The ``fedgossip`` command: one module per command group, all thin over the library."""

from fedgossip.cli.main import main

__all__ = ["main"]
