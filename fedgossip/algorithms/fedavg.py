"""``fedavg``: federated averaging over a star (McMahan et al.), node 0 the server.

Each round a fraction of the clients (``client_fraction``, the paper's C), drawn
identically on every node from the run seed, trains locally and sends its delta
against the global model; the server averages the deltas weighted by sample
count and sends every client the change of the global model. Both directions travel as deltas
through the codec, and server and clients apply the *decoded* global delta to their copy
of the global model, so all copies stay identical by construction. With a
biased compressor (top-k, sign) both directions keep error-feedback residuals:
each client for its uplink, the server for its broadcast.

The downlink goes to every client, not only the chosen ones, and is counted in
the server's ``bytes_sent``. The paper sends the chosen clients the model
itself; here it travels as a compressed delta, which a client can only apply to
the copy it already holds. A client left out of a round would then need a
catch-up delta against its own stale copy: one packet per missed round saves no
bytes (it receives the same packets later, and every client is evaluated, so
must be current at each evaluation), and one aggregated packet means the server
keeps a copy per client (clients × model floats) to stay exact under a lossy codec.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedgossip.algorithms.base import Algorithm, check_state, round_rng
from fedgossip.algorithms.context import GossipContext
from fedgossip.byzantine.aggregators import Mean
from fedgossip.comm.conversation import Conversation, Exchange
from fedgossip.compress.feedback import ErrorFeedback
from fedgossip.errors import ConfigError
from fedgossip.registry import check_params
from fedgossip.specs import Param

__all__ = ["FedAvg"]

_SELECTION_STREAM = 2
_MEAN = Mean()  # the server's default rule: the sample-weighted average of the deltas


class FedAvg(Algorithm):
    """Average sampled clients' deltas on a server, weighted by their sample counts."""

    server = 0
    graph = "star"
    robust_place = "server"
    survives_lost_nodes = True  # lost clients; the server is node 0, on rank 0, whose loss ends the run
    params = (Param("client_fraction", float, 1.0, "share of clients sampled per round", gt=0, le=1),)

    def __init__(self, client_fraction: float = 1.0):
        check_params(type(self), client_fraction=client_fraction)
        self.client_fraction = client_fraction

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        if ctx.size < 2:
            raise ConfigError(
                "fedavg needs a server and at least one client: run with 2 or more nodes (--nodes or ranks)"
            )
        # the clients still in the run: after a lost rank (--on-failure continue) it is set up
        # again at a round's start, when every client's model is the global one, as is its copy
        self._clients = np.array([c for c in range(1, ctx.size) if c not in ctx.lost], dtype=np.int64)
        self._global = flat.detach().clone()  # every node's copy of the global model
        # One residual per outgoing stream: a client's uplink, or the server's broadcast.
        self.feedback = ErrorFeedback(flat.numel(), enabled=not ctx.codec.compressor.unbiased)
        self._last_change = torch.zeros_like(flat)  # an attacker's estimate of the honest update

    def availability_problem(self, compressor) -> str | None:
        return None

    def selected(self, round_index: int) -> np.ndarray:
        """Return the clients sampled in ``round_index`` (identical on every node; drawn once per rank).

        Under --availability it samples among the round's online clients: as many as the
        fraction of all clients asks, or every online one where fewer are online.
        """
        drawn = self.ctx.shared.get("fedavg.selected")
        if drawn is None or drawn[0] != round_index:
            online = self.ctx.online(round_index)
            candidates = self._clients if online is None else self._clients[online[self._clients]]
            count = min(len(candidates), max(1, round(self.client_fraction * len(self._clients))))
            rng = round_rng(self.ctx.seed, round_index, _SELECTION_STREAM)
            chosen = np.sort(rng.choice(candidates, size=count, replace=False))
            drawn = self.ctx.shared["fedavg.selected"] = (round_index, chosen, set(chosen.tolist()))
        return drawn[1]

    def trains(self, node: int, round_index: int) -> bool:
        if node == self.server:
            return False
        self.selected(round_index)
        return node in self.ctx.shared["fedavg.selected"][2]

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        # Two stages: the chosen clients' deltas go up, then the global change comes down.
        chosen = [int(c) for c in self.selected(round_index)]
        if self.ctx.node == self.server:
            change = yield from self._serve(flat, chosen)
        else:
            change = yield from self._participate(flat, round_index)
        self._global.add_(change.to(flat.device))
        if self._current_after(round_index):
            flat.copy_(self._global)

    def _current_after(self, round_index: int) -> bool:
        """Whether this node's model becomes the global one at the end of ``round_index``.

        An offline client's downlink waits for it, as a mailbox would: its model stays as it
        was while it is away (its copy of the global model follows, so deltas stay exact) and
        becomes the global model at the end of its last offline round, before it trains again.
        """
        after = round_index + 1
        if self.ctx.availability is None or after > self.ctx.availability.rounds:
            return self.ctx.is_online(self.ctx.node, round_index)
        return self.ctx.is_online(self.ctx.node, round_index) or self.ctx.is_online(self.ctx.node, after)

    def state_dict(self) -> dict[str, Any]:
        """Return this node's copy of the global model and its residual; client draws follow the round."""
        state = {"global": self._global.clone(), "feedback": self.feedback.state_dict()}
        if self.ctx.attack is not None:
            state["last_change"] = self._last_change.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the global model's copy and the residual, after ``setup`` with the same settings."""
        check_state(self.name, state, self.state_dict())
        self.feedback.load_state_dict(state["feedback"])
        self._global.copy_(state["global"])
        if self.ctx.attack is not None:
            self._last_change.copy_(state["last_change"])

    def _serve(self, flat: torch.Tensor, chosen: list[int]) -> Conversation:
        """Average the chosen clients' deltas, broadcast the change, return it as the clients decode it."""
        codec = self.ctx.codec
        received = yield Exchange({}, chosen)
        weights = self.ctx.sample_counts[chosen].astype(np.float64)
        weights = [float(w) for w in weights / weights.sum()]
        deltas = [codec.unpack(received[client], client).to(flat.device) for client in chosen]
        aggregator = self.ctx.aggregator or _MEAN
        # the server has no update of its own: it combines the clients' deltas only (self weight 0)
        update = aggregator.combine(torch.zeros_like(flat), deltas, weights, 0.0)
        sent = self.feedback.corrected(update)
        packet = codec.pack(sent)
        yield Exchange(dict.fromkeys((int(c) for c in self._clients), packet))
        change = codec.unpack(packet[0], self.ctx.node)  # apply what the clients will decode, not `update`
        self.feedback.absorb(sent, change.to(sent.device))
        return change

    def _participate(self, flat: torch.Tensor, round_index: int) -> Conversation:
        """Send this client's delta if it was chosen; return the global change the server broadcast."""
        codec, outgoing = self.ctx.codec, {}
        if self.trains(self.ctx.node, round_index):
            delta = flat - self._global
            if self.ctx.attack is not None:
                # attacks act on the update, knowing the last global change the server broadcast
                delta = self.ctx.forge(delta, {self.server: self._last_change}, self.server)
            sent = self.feedback.corrected(delta)
            outgoing[self.server] = packet = codec.pack(sent)
            self.feedback.absorb(sent, codec.unpack(packet[0], self.ctx.node).to(sent.device))
        yield Exchange(outgoing)
        received = yield Exchange({}, [self.server])
        change = codec.unpack(received[self.server], self.server)
        if self.ctx.attack is not None:
            self._last_change.copy_(change.to(self._last_change.device))
        return change
