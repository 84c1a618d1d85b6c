"""Models: one factory per file, each a plugin of the ``fedgossip.models`` group.

See :mod:`fedgossip.local.models.base` for the contract and :func:`build_model`.
"""

from fedgossip.local.models.base import MODELS, ModelFactory, build_model

__all__ = ["MODELS", "ModelFactory", "build_model"]
