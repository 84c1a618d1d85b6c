"""Uncompressed averaging among co-hosted nodes as one sparse product on their stacked models.

When a rank hosts many nodes and the compressor is ``none``, a packet is an exact
float32 copy of the sender's model: framing it, checking its CRC and copying it
back out for each of a node's co-hosted neighbours changes no bit of the result
and costs more than the averaging. So, in a vectorized run, the contributions
of co-hosted neighbours to x_i ← Σ_j W_ij x_j are one product W_local · X of the
rank's block of the Metropolis matrix with the stacked pre-round models, computed
once per round by the first node to need it (under --availability, with the block of
the round's online Metropolis matrix, rebuilt when the online set changes); neighbours on other ranks still
send packets. The bytes are counted as the packets would have been (same size,
``bytes_within``), so the summary reads the same either way. The result equals
the packet path up to the order of the float additions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedgossip.algorithms.context import GossipContext
from fedgossip.topology.mixing import metropolis_row
from fedgossip.topology.online import online_metropolis_row

__all__ = ["CoHostedMixing", "cohosted_mixing"]

_SHARED_KEY = "dpsgd.cohosted-mixing"


@dataclass
class _Product:
    round_index: int
    mixed: torch.Tensor  # [hosted, numel]: row r is Σ_{co-hosted j} W_ij x_j for the r-th hosted node i


class CoHostedMixing:
    """One rank's block of the mixing matrix, and each round's product with its nodes' models."""

    def __init__(self, ctx: GossipContext):
        placement = ctx.network.placement
        self.hosted = placement.nodes_of(ctx.network.rank)
        self._row_of = {node: row for row, node in enumerate(self.hosted)}
        self._flats: dict[int, torch.Tensor] = {}
        self._topology = ctx.topology
        self._block = self._build_block(None)
        self._block_online: bytes | None = None  # the online mask the block is for (None: all nodes)
        self._product: _Product | None = None

    def _build_block(self, online: np.ndarray | None) -> torch.Tensor:
        """Return the hosted nodes' block of W (of the online subgraph's W, given ``online``)."""
        rows, columns, weights = [], [], []
        for node in self.hosted:
            if online is None:
                row = metropolis_row(self._topology, node)
            else:
                row = online_metropolis_row(self._topology, online, node)
            for peer, weight in row.items():
                if peer != node and peer in self._row_of:
                    rows.append(self._row_of[node])
                    columns.append(self._row_of[peer])
                    weights.append(weight)
        size = len(self.hosted)
        return torch.sparse_coo_tensor(
            torch.tensor([rows, columns], dtype=torch.long).reshape(2, -1),
            torch.tensor(weights, dtype=torch.float32),
            (size, size),
            check_invariants=True,  # built once per rank (per online set): the check costs little
        ).coalesce()

    def register(self, node: int, flat: torch.Tensor) -> None:
        """Hold ``node``'s model vector (its parameters' own storage) for the rounds' products."""
        self._flats[node] = flat

    def local_sum(self, node: int, round_index: int, online: np.ndarray | None = None) -> torch.Tensor:
        """Return Σ_{co-hosted neighbours j} W_ij x_j of round ``round_index``, from pre-round models.

        ``online``: the round's online mask (None: every node); W is then the online subgraph's.

        The first call of a round stacks every hosted node's model and multiplies once:
        it must come before any node of the rank changes its model this round, which the
        conversation guarantees (no node resumes before every node has asked).
        """
        product = self._product
        if product is None or product.round_index != round_index:
            key = None if online is None else np.packbits(online).tobytes()
            if key != self._block_online:
                self._block, self._block_online = self._build_block(online), key
            stacked = torch.stack([self._flats[hosted] for hosted in self.hosted])
            mixed = torch.sparse.mm(self._block.to(stacked.device), stacked)
            product = self._product = _Product(round_index, mixed)
        return product.mixed[self._row_of[node]]


def cohosted_mixing(ctx: GossipContext) -> CoHostedMixing:
    """Return the rank's :class:`CoHostedMixing`, built by the first of its nodes to ask."""
    mixing = ctx.shared.get(_SHARED_KEY)
    if mixing is None:
        mixing = ctx.shared[_SHARED_KEY] = CoHostedMixing(ctx)
    return mixing
