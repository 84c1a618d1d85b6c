"""The consoles everything is drawn on, and the one-line error format."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

__all__ = ["stdout", "print_error", "is_terminal"]

stdout = Console(highlight=False)
_stderr = Console(stderr=True, highlight=False)


def is_terminal() -> bool:
    """Return whether stdout is an interactive terminal (progress bars) or a log (plain lines)."""
    return sys.stdout.isatty()


def print_error(message: str) -> None:
    """Print a user error as one red line on stderr."""
    _stderr.print(f"[bold red]error:[/] [red]{escape(message)}[/]", soft_wrap=True)
