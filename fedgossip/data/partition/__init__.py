"""Partitioners: how a dataset's training samples are split across nodes.

One scheme per file, each a plugin of the ``fedgossip.partitioners`` group;
see :mod:`fedgossip.data.partition.base` for the contract.
"""

from fedgossip.data.partition.base import PARTITIONERS, Partitioner, Samples

__all__ = ["PARTITIONERS", "Partitioner", "Samples"]
