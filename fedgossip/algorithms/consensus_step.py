"""CHOCO-gossip's consensus step γ, shared by the algorithms that mix through public copies (dpsgd, gt)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedgossip.errors import ConfigError

if TYPE_CHECKING:
    from fedgossip.compress.base import Compressor

__all__ = ["ConsensusStep"]


class ConsensusStep:
    """γ as the ``gamma`` spec parameter gives it, else the compressor's; ``None`` uncompressed.

    Mixed into an :class:`~fedgossip.algorithms.base.Algorithm` that declares ``gamma``.
    """

    name: str
    gamma: float | None = None  # as given; None: the compressor's (Compressor.consensus_step)

    def consensus_step_for(self, compressor: Compressor) -> float | None:
        """Return γ under a lossy ``compressor`` (``gamma``, else the compressor's); ``None`` uncompressed."""
        if compressor.lossless:
            return None
        return compressor.consensus_step if self.gamma is None else self.gamma

    def checked_consensus_step(self, compressor: Compressor) -> float | None:
        """Return :meth:`consensus_step_for`, refusing a compressor's default outside (0, 1]."""
        step = self.consensus_step_for(compressor)
        if step is not None and not 0 < step <= 1:  # a compressor's default: a given gamma was checked
            raise ConfigError(
                f"{compressor.name}'s consensus step must be in (0, 1], got {step}; "
                f"give one: --algorithm {self.name}:gamma=G"
            )
        return step
