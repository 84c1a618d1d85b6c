"""``none``: plain float32, the reference every compressor is measured against."""

from __future__ import annotations

import numpy as np
import torch

from fedgossip.compress.base import Compressor, Packet, as_float32_array, output_tensor

__all__ = ["NoCompression"]


class NoCompression(Compressor):
    """Send float32 values as they are (4 bytes each)."""

    lossless = True
    unbiased = True

    def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
        values = as_float32_array(x)
        # Little-endian on the wire whatever the host, so mixed clusters agree.
        return Packet(count=values.size, payload=values.astype("<f4", copy=False).view(np.uint8).ravel())

    def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
        self.check_packet(packet)
        result = output_tensor(packet.count, out)
        result.numpy()[:] = np.frombuffer(packet.payload, dtype="<f4", count=packet.count)
        return result

    def nbytes(self, count: int) -> int:
        return 4 * count
