"""``share-data``: send each neighbour a few of this node's samples, quantized, and train on theirs.

After "Quantizing data for distributed learning": communication that scales
with the data rather than the model. Before round 1, and every ``every`` rounds
if ``every > 0``, each node sends every neighbour up to ``budget`` of its *own*
samples (never what it received, so data travels one hop), features quantized
to ``bits`` bits by the ``uniform`` code, labels exact. Which samples: the ones
the current model finds hardest (highest cross-entropy), or a random draw.
Receivers serve them after their own shard (``BatchStream.set_extra``).

The messages go through the rank's network like model packets (in memory to a
co-hosted neighbour, by MPI otherwise), counted apart as ``data_bytes_*``. This
sends raw data, even if quantized: for trusted networks only, and refused with ``--dp``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn.functional import cross_entropy

from fedgossip.comm.conversation import Conversation, DataExchange
from fedgossip.errors import ConfigError
from fedgossip.plugins.base import PluginHost, TrainingPlugin
from fedgossip.plugins.sample_packets import decode_samples, encode_samples, message_sender, message_size
from fedgossip.registry import check_params
from fedgossip.specs import Param

__all__ = ["ShareData"]

_SELECT_STREAM = 8  # keeps the random selection's draws apart from the other (seed, node) generators
_CHUNK = 1024  # samples per forward pass when scoring the shard

BUDGET = Param("budget", int, 32, "samples sent to each neighbour per exchange", ge=1)
BITS = Param("bits", int, 8, "bits per feature value", ge=1, le=8)
SELECT = Param(
    "select",
    str,
    "loss",
    "loss (highest loss under the current model first) or random",
    choices=("loss", "random"),
)
EVERY = Param("every", int, 0, "exchange again every this many rounds (0: only before round 1)", ge=0)


class ShareData(TrainingPlugin):
    """Share up to budget quantized own samples with every neighbour; train on what they send."""

    params = (BUDGET, BITS, SELECT, EVERY)
    kind = "share-data"
    metrics = ("shared_samples",)  # received samples the node currently trains on
    shares_raw_data = True
    one_node_per_rank = False  # it speaks through conversations

    def __init__(self, budget: int = 32, bits: int = 8, select: str = "loss", every: int = 0):
        check_params(type(self), budget=budget, bits=bits, select=select, every=every)
        # Settings, tuned by the user.
        self.budget = budget
        self.bits = bits
        self.select = select
        self.every = every
        # Internal state.
        self._host: PluginHost | None = None
        # Seeded from (seed, node): the samples drawn must differ across nodes and neighbours.
        self._rng: np.random.Generator | None = None
        self._received: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per neighbour: its latest samples
        self._exchanges = 0  # exchanges done; the next one's number is the packets' sequence number
        # Positions of the own samples sent to each neighbour in the last exchange (for reports and tests).
        self.sent_indices: dict[int, np.ndarray] = {}

    def check(self, algorithm: Any, config: Any, privacy: Any) -> None:
        """Refuse a server's star and --link; --dp and --async are refused where plugins are resolved,
        for every plugin declaring ``shares_raw_data`` or ``synchronous_only``."""
        problems = []
        if getattr(algorithm, "server", None) is not None:
            problems.append(
                f"{getattr(algorithm, 'name', 'this algorithm')} has a server, the clients' only neighbour, "
                "which does not train on samples; use a decentralized algorithm such as dpsgd or swarm"
            )
        if getattr(config, "link", "none") != "none":
            # the samples would be counted but take no emulated time, flattering it against more rounds
            problems.append("its messages do not go through the --link emulation yet; drop --link")
        if problems:
            raise ConfigError("--share-data cannot run: " + "; ".join(problems))

    def start(self, host: PluginHost) -> None:
        """Attach to the node's training; the first exchange is the conversation before round 1."""
        self._host = host
        self._rng = np.random.default_rng([host.seed, host.rank, _SELECT_STREAM])

    def restore(self, host: PluginHost, state: dict[str, Any]) -> None:
        """Attach to a resumed run without exchanging: the checkpoint holds what neighbours last sent.

        It serves the restored samples (:meth:`load_state_dict`); the stream, restored after
        it, then puts back its own saved extras, order and generation over them, so the
        samples are the same either way and no epoch ends early.
        """
        self._host = host
        self._rng = np.random.default_rng([host.seed, host.rank, _SELECT_STREAM])
        self.load_state_dict(state)

    def conversation(self, round_index: int) -> Conversation | None:
        """Exchange before round 1, and again before rounds 1 + every, 1 + 2·every, ..."""
        if round_index == 1 or (self.every > 0 and (round_index - 1) % self.every == 0):
            return self._exchange()
        return None

    def values(self) -> tuple[float, ...]:
        return (float(sum(len(y) for _, y in self._received.values())),)

    def _exchange(self) -> Conversation:
        """Send each neighbour its selection, receive theirs, and serve what arrived after the shard."""
        host = self._require_host()
        outgoing = self._messages(host)
        # a peer's message may hold no more than the budget: checked before a buffer is allocated
        limit = message_size(self.budget, math.prod(host.shard_x.shape[1:]), self.bits, host.num_classes)
        buffers = yield DataExchange(outgoing, sorted(host.neighbors), limit, message_sender)
        input_shape = tuple(host.shard_x.shape[1:])
        for peer, buffer in buffers.items():
            self._received[peer] = decode_samples(
                buffer, peer, input_shape, host.num_classes, self.budget, self.bits, self._exchanges
            )
        self._exchanges += 1
        self._serve(host)

    def _messages(self, host: PluginHost) -> dict[int, np.ndarray]:
        """Return the encoded message for each neighbour, and remember which own samples it holds."""
        count = min(self.budget, len(host.shard_y))
        if self.select == "loss":
            chosen = self._hardest(host, count)
            self.sent_indices = {peer: chosen for peer in host.neighbors}
            message = self._encode(host, chosen)  # one message serves every neighbour
            return {peer: message for peer in host.neighbors}
        self.sent_indices = {
            peer: self._rng.choice(len(host.shard_y), size=count, replace=False) for peer in host.neighbors
        }
        return {peer: self._encode(host, chosen) for peer, chosen in self.sent_indices.items()}

    def _encode(self, host: PluginHost, chosen: np.ndarray) -> np.ndarray:
        return encode_samples(
            host.shard_x[chosen],
            host.shard_y[chosen],
            host.rank,
            self.bits,
            host.num_classes,
            self._exchanges,
        )

    def _hardest(self, host: PluginHost, count: int) -> np.ndarray:
        """Return the positions of the ``count`` own samples of highest cross-entropy, highest first.

        One forward pass in eval mode, in chunks, without gradients; the model's
        mode is restored afterwards. Ties go to the earlier sample.
        """
        model = host.model
        was_training = model.training
        model.eval()
        losses = []
        try:
            with torch.no_grad():
                for start in range(0, len(host.shard_y), _CHUNK):
                    x = torch.as_tensor(np.asarray(host.shard_x[start : start + _CHUNK], dtype=np.float32))
                    y = torch.as_tensor(np.asarray(host.shard_y[start : start + _CHUNK], dtype=np.int64))
                    logits = model(x.to(host.device))
                    losses.append(cross_entropy(logits, y.to(host.device), reduction="none").cpu())
        finally:
            model.train(was_training)
        loss = torch.cat(losses).numpy()
        return np.argsort(-loss, kind="stable")[:count]

    def _serve(self, host: PluginHost) -> None:
        """Serve every neighbour's latest samples after the shard's own, in node order."""
        peers = sorted(self._received)
        if not peers and host.stream.num_samples == host.stream.own_samples:
            return  # nothing to add, nothing to clear: leave the epoch under way alone
        shape = host.shard_x.shape[1:]
        x = np.concatenate([np.empty((0, *shape), np.float32)] + [self._received[p][0] for p in peers])
        y = np.concatenate([np.empty(0, np.int64)] + [self._received[p][1] for p in peers])
        host.stream.set_extra(x, y)

    def _require_host(self) -> PluginHost:
        if self._host is None or self._rng is None:
            raise RuntimeError("share-data is not attached to a node yet; call start(host) first")
        return self._host

    def state_dict(self) -> dict[str, Any]:
        """Return the samples received from each neighbour, the exchange count and the generator state."""
        return {
            "received_x": {peer: x for peer, (x, _) in self._received.items()},
            "received_y": {peer: y for peer, (_, y) in self._received.items()},
            "exchanges": self._exchanges,
            "rng": None if self._rng is None else self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` once attached, and serve the restored samples.

        Attached by :meth:`restore` (a resumed run, no exchange) or by :meth:`start`, whose
        exchange this replaces with what the checkpoint held, so the run goes on as it would have.
        """
        expected = {"received_x", "received_y", "exchanges", "rng"}
        if set(state) != expected:
            raise KeyError(f"share-data state needs keys {sorted(expected)}, got {sorted(state)}")
        host = self._require_host()
        if set(state["received_x"]) != set(state["received_y"]):
            raise ValueError("share-data state holds samples and labels from different neighbours")
        self._received = {
            int(peer): (
                np.asarray(x, dtype=np.float32),
                np.asarray(state["received_y"][peer], dtype=np.int64),
            )
            for peer, x in state["received_x"].items()
        }
        self._exchanges = int(state["exchanges"])
        if state["rng"] is not None:
            self._rng.bit_generator.state = state["rng"]
        self._serve(host)
