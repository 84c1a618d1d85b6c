"""Dataset sources: where the samples a partition is made from come from.

Each source is a plugin of the ``fedgossip.datasets`` entry-point group; see
:mod:`fedgossip.data.sources.base` for the contract.
"""

from fedgossip.data.sources.base import SOURCES, Dataset, DatasetSource, load_source

__all__ = ["SOURCES", "Dataset", "DatasetSource", "load_source"]
