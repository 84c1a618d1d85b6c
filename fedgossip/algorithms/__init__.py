"""Communication algorithms: how a round's models are mixed across ranks. One per file."""

from fedgossip.algorithms.base import ALGORITHMS, Algorithm
from fedgossip.algorithms.context import GossipContext

__all__ = ["ALGORITHMS", "Algorithm", "GossipContext"]
