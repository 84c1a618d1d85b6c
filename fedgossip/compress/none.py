"""``none``: plain float32, the reference every compressor is measured against."""

from __future__ import annotations

import numpy as np
import torch

from fedgossip.compress.base import Compressor, Packet

__all__ = ["NoCompression"]


class NoCompression(Compressor):
    """Send float32 values as they are (4 bytes each)."""

    lossless = True

    def encode(self, x: torch.Tensor) -> Packet:
        values = x.detach().to("cpu", torch.float32).contiguous().numpy()
        # Little-endian on the wire whatever the host, so mixed clusters agree.
        return Packet(count=values.size, payload=values.astype("<f4", copy=False).view(np.uint8).ravel())

    def decode(self, packet: Packet) -> torch.Tensor:
        values = np.frombuffer(packet.payload, dtype="<f4", count=packet.count)
        return torch.from_numpy(values.astype(np.float32))

    def nbytes(self, count: int) -> int:
        return 4 * count
