"""Training-time plugins: hooks that change what a node trains on, and how much.

See :mod:`fedgossip.plugins.base` for the contract; the built-ins are importance
filtering (``hide``, :mod:`fedgossip.plugins.filtering`) and quantized data
sharing (``share-data``, :mod:`fedgossip.plugins.share_data`).
"""

from fedgossip.plugins.base import PLUGINS, PluginHost, TrainingPlugin

__all__ = ["PLUGINS", "PluginHost", "TrainingPlugin"]
