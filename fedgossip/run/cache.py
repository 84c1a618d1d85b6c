"""fedgossip's cache directory: where the embedded default partition is made, once.

``$FEDGOSSIP_CACHE``, else ``$XDG_CACHE_HOME/fedgossip``, else ``~/.cache/fedgossip`` (the XDG
base directory rule), so a default run leaves nothing in the directory it was started from.
Standard library only: the CLI's help text imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_HELP", "cache_dir", "cache_setting"]

CACHE_HELP = "$FEDGOSSIP_CACHE, else $XDG_CACHE_HOME/fedgossip, else ~/.cache/fedgossip"
"""Where the cache is, as help text says it."""


def cache_dir() -> Path:
    """Return the cache directory, absolute; it may not exist yet. An empty variable counts as unset."""
    if os.environ.get("FEDGOSSIP_CACHE"):
        return Path(os.environ["FEDGOSSIP_CACHE"]).absolute()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).absolute() / "fedgossip"
    return Path.home().absolute() / ".cache" / "fedgossip"


def cache_setting() -> str:
    """Return what chose :func:`cache_dir`, for messages: ``FEDGOSSIP_CACHE=/x``, or ``~/.cache``."""
    for name in ("FEDGOSSIP_CACHE", "XDG_CACHE_HOME"):
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    return "~/.cache"
