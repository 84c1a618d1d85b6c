"""Compressors and the packet format their payloads travel in.

A compressor is stateless: ``encode(x) -> Packet``, ``decode(Packet) -> Tensor``,
``nbytes(n)``. State that changes (error-feedback residuals, public copies)
lives outside it, so one compressor serves every peer.
"""

from fedgossip.compress.base import COMPRESSORS, Compressor, Packet

__all__ = ["COMPRESSORS", "Compressor", "Packet"]
