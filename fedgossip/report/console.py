"""The consoles everything is drawn on, and the one-line error format.

Every MPI rank of ``fedgossip train`` imports this module for :func:`print_error`,
but only rank 0 draws, so rich is imported when a console is first used:
``stdout`` is made on first access, the error console on the first error.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    stdout: Console

__all__ = ["stdout", "print_error", "is_terminal"]


def __getattr__(name: str):
    # PEP 562: ``stdout`` is built on first access, then kept as an ordinary module attribute.
    if name == "stdout":
        console = _console(stderr=False)
        globals()["stdout"] = console
        return console
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_terminal() -> bool:
    """Return whether stdout is an interactive terminal (progress bars) or a log (plain lines)."""
    return sys.stdout.isatty()


def print_error(message: str) -> None:
    """Print a user error as one red line on stderr."""
    from rich.markup import escape  # rich on first use: see the module docstring

    # emoji=False: a name such as ":x:" in the message is quoted as given, not drawn as ❌.
    _console(stderr=True).print(f"[bold red]error:[/] [red]{escape(message)}[/]", soft_wrap=True, emoji=False)


@functools.cache
def _console(stderr: bool) -> Console:
    from rich.console import Console  # rich on first use: see the module docstring

    return Console(stderr=stderr, highlight=False)
