"""One node's privacy: its mechanism, its own noise generator, its accountant, δ and budget.

The training loop asks, before each round (or each burst of local steps with
``--async``), whether the work it is about to do would take the node's ε past
``--dp-target-epsilon``; only if not does it train, and then charges the
accountant. So a node never spends beyond its budget, and ε(δ) is known at
every evaluation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fedgossip.privacy.accountant import RdpAccountant, default_delta
from fedgossip.privacy.base import PrivacyMechanism, RoundWork

__all__ = ["NodePrivacy"]

# Stream of the generators seeded by (run seed, rank) under --deterministic, apart from the others (1-6).
_NOISE_STREAM = 7


class NodePrivacy:
    """Privatize one node's training and account for it.

    Parameters
    ----------
    mechanism
        The ``--dp`` mechanism.
    samples
        Training samples on the node: the Poisson sampling rate of dp-sgd and the default δ depend on it.
    batch_size
        ``--batch-size``, the expected batch of dp-sgd.
    delta, target_epsilon
        ``--dp-delta`` (None: :func:`default_delta`) and ``--dp-target-epsilon`` (None: no budget).
    seed, rank, deterministic
        Noise must differ across ranks and stay secret: by default the generator is seeded from
        the OS; ``--deterministic`` derives it from (run seed, rank) so a run repeats exactly.
        Either way it is never the data-order generator.
    device
        Where the noise is drawn (the model's device).
    """

    def __init__(
        self,
        mechanism: PrivacyMechanism,
        samples: int,
        batch_size: int,
        delta: float | None,
        target_epsilon: float | None,
        seed: int,
        rank: int,
        deterministic: bool,
        device: torch.device | str = "cpu",
    ):
        self.mechanism = mechanism
        self.samples = samples
        self.batch_size = batch_size
        self.delta = default_delta(samples) if delta is None else delta
        self.target_epsilon = target_epsilon
        self.accountant = RdpAccountant()
        self.stopped = False  # set when the budget stopped this node's training
        self.deterministic = deterministic
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(_noise_seed(seed, rank) if deterministic else secrets.randbits(63))

    def work(self, steps: int) -> RoundWork:
        return RoundWork(steps, self.samples, self.batch_size)

    def would_exceed(self, steps: int) -> bool:
        """Return whether a round of ``steps`` local steps would take ε past the budget."""
        if self.target_epsilon is None:
            return False
        return self.epsilon_after(steps) > self.target_epsilon

    def epsilon_after(self, steps: int) -> float:
        """Return ε after a further round of ``steps`` local steps (inf without noise)."""
        charge = self.mechanism.charge(self.work(steps))
        return self.accountant.epsilon_after(self.mechanism.noise, charge.rate, charge.count, self.delta)

    def train(self, flat: torch.Tensor, train: Callable[[], None]) -> None:
        """Run ``train``; a node-level mechanism then privatizes the change it made to ``flat``.

        Nothing may read ``flat`` in between (no gossip during the local steps),
        or the unprivatized model would leave the node.
        """
        if self.mechanism.level != "node":
            train()  # dp-sgd privatized every step's gradient already
            return
        start = flat.detach().clone()
        train()
        update = flat.detach() - start
        self.mechanism.privatize_update(update, self.generator)
        flat.copy_(start.add_(update))

    def spend(self, steps: int) -> None:
        """Charge a round of ``steps`` local steps (0: the node sat it out)."""
        charge = self.mechanism.charge(self.work(steps))
        if charge.count:
            self.accountant.spend(self.mechanism.noise, charge.rate, charge.count)

    @property
    def epsilon(self) -> float:
        return self.accountant.epsilon(self.delta)

    def state_dict(self) -> dict[str, Any]:
        """Return the accountant's state, ``stopped``, and the noise generator's state if deterministic.

        An OS-seeded generator's state is left out (``None``): it would write the secret noise
        seed to disk. A resumed run reseeds it from the OS, so only its noise differs.
        """
        return {
            "accountant": self.accountant.state_dict(),
            "stopped": self.stopped,
            "generator": self.generator.get_state() if self.deterministic else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; the generator in place, as DP-SGD's gradient holds it."""
        expected = {"accountant", "stopped", "generator"}
        if set(state) != expected:
            raise ValueError(f"node privacy state has keys {sorted(state)}, expected {sorted(expected)}")
        if (state["generator"] is not None) != self.deterministic:
            saved = "with" if state["generator"] is not None else "without"
            raise ValueError(
                f"node privacy state was saved {saved} --deterministic; resume with the same setting"
            )
        self.accountant.load_state_dict(state["accountant"])
        self.stopped = bool(state["stopped"])
        if state["generator"] is not None:
            self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8).cpu())


def _noise_seed(seed: int, rank: int) -> int:
    state = np.random.SeedSequence([seed, rank, _NOISE_STREAM]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])
