"""Errors that reach the user.

Every message says what was wrong and how to fix it. The CLI turns a
``FedGossipError`` into one red line and exit code 1; anything else is a bug
and shows its traceback.
"""

__all__ = [
    "FedGossipError",
    "ConfigError",
    "DataError",
    "TopologyError",
    "WireError",
    "PrivacyBudgetExhausted",
]


class FedGossipError(Exception):
    """Base class of every error fedgossip reports to the user."""


class ConfigError(FedGossipError):
    """A setting, option or plugin spec is invalid."""


class DataError(FedGossipError):
    """A dataset, partition or shard is missing, malformed or corrupted."""


class TopologyError(FedGossipError):
    """A communication graph is impossible or disconnected."""


class WireError(FedGossipError):
    """A packet received from another rank is malformed."""


class PrivacyBudgetExhausted(FedGossipError):
    """Training would exceed the requested privacy budget."""
