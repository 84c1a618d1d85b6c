"""Rényi-DP accounting of the Poisson-subsampled Gaussian mechanism.

One step of the mechanism includes each record with probability ``rate`` (q),
sums the included contributions, each clipped to L2 norm C, and adds Gaussian
noise of standard deviation ``noise`` · C (σ·C). Neighbouring datasets differ
by adding or removing one record, so the sensitivity is the clip norm C:

- ``dp-sgd`` (sample level): a record is one training sample of a node's shard;
- ``dp-update`` (node level): a record is a node's whole shard, and its
  contribution is the node's clipped model update.

The accountant composes steps in Rényi DP and converts the total to (ε, δ)-DP:

- one step, integer orders α: the finite binomial sum of Mironov, Talwar and
  Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism",
  §3.3; fractional orders: the two convergent series with erfc terms of the
  same section, summed until their terms fall below e^-30;
- composition: RDP at a fixed order adds up over steps (Mironov 2017, Prop. 1);
- conversion: ε = ε_α + log((α-1)/α) - (log δ + log α)/(α-1), minimized over
  the orders (Balle et al. 2020, Thm. 21; Canonne, Kamath and Steinke 2020,
  Prop. 12).

With the default orders this gives the same ε as Opacus's ``RDPAccountant``
(``tests/privacy/test_accountant.py`` checks it to 1e-6 relative), except that
ε is never reported below 0, and a curve that is zero at every order (nothing
was sampled) gives ε = 0 instead of the conversion's slack.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence

import numpy as np

# scipy.special is imported by the functions that use it: only private runs account, while every
# MPI rank imports this module (scipy costs each ~0.1 s and ~15 MB).

__all__ = ["DEFAULT_ORDERS", "rdp_of_step", "epsilon_from_rdp", "default_delta", "RdpAccountant"]

# Opacus's RDPAccountant.DEFAULT_ALPHAS: fine steps where the optimum usually lies, then integers.
DEFAULT_ORDERS: tuple[float, ...] = tuple(1 + x / 10 for x in range(1, 100)) + tuple(
    float(a) for a in range(12, 64)
)

# Noise this small counts as none (ε = inf): the series' terms e^(i²/2σ²) overflow float64 from
# about σ = 1e-155 on, and at σ = 1e-99 one step already gives ε ≈ 5.5e197 at any sampling rate.
_NEGLIGIBLE_NOISE = 1e-100
_STOP_LOG_TERM = -30.0  # the fractional series stop once both terms are below e^-30, as Opacus does
_FIRST_CHUNK, _MAX_CHUNK = 64, 1 << 16  # terms per series evaluated at once (doubling, bounded)


def _check_charge(noise: float, rate: float, steps: int = 0) -> None:
    """Raise one ``ValueError`` listing every invalid argument of a charge."""
    problems = []
    if not (math.isfinite(noise) and noise >= 0):
        problems.append(f"noise must be finite and >= 0, got {noise!r}")
    if not 0 <= rate <= 1:
        problems.append(f"rate must be in [0, 1], got {rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        problems.append(f"steps must be an integer >= 0, got {steps!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _check_delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def _log_a_integer(q: float, sigma: float, alphas: np.ndarray) -> np.ndarray:
    """Return log A_α for integer orders: Σ_i C(α,i) q^i (1-q)^(α-i) e^((i²-i)/(2σ²)) (MTZ19 §3.3)."""
    from scipy import special  # on first use: see the note above __all__

    # One row per order, one column per i; the columns past a row's α are masked out.
    a = alphas[:, None]
    i = np.arange(int(alphas.max()) + 1, dtype=float)[None, :]
    inside = i <= a
    k = np.where(inside, i, 0.0)  # keeps gammaln away from its poles in the masked cells
    log_terms = (
        special.gammaln(a + 1)
        - special.gammaln(k + 1)
        - special.gammaln(a - k + 1)
        + k * math.log(q)
        + (a - k) * math.log1p(-q)
        + (k * k - k) / (2 * sigma**2)
    )
    return special.logsumexp(np.where(inside, log_terms, -np.inf), axis=1)


def _series_terms(q: float, sigma: float, alphas: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the log-magnitudes of both series' i-th terms (MTZ19 §3.3), and their sign."""
    from scipy import special  # on first use: see the note above __all__

    a = alphas[:, None]
    j = a - i
    # C(α, i) for fractional α: its magnitude from log-gammas, its sign from Γ(α-i+1) alone.
    log_binom = special.gammaln(a + 1) - special.gammaln(i + 1) - special.gammaln(j + 1)
    sign = special.gammasgn(j + 1)
    # z0 splits the real line where the two Gaussians' mixture weights cross; the erfc factors
    # are written as ½·erfc(x/√2) = Φ(-x), i.e. scipy's log_ndtr, which stays accurate in the tails.
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    log_q, log_1mq = math.log(q), math.log1p(-q)
    below = (
        log_binom
        + i * log_q
        + j * log_1mq
        + (i * i - i) / (2 * sigma**2)
        + special.log_ndtr((z0 - i) / sigma)
    )
    above = (
        log_binom
        + j * log_q
        + i * log_1mq
        + (j * j - j) / (2 * sigma**2)
        + special.log_ndtr((j - z0) / sigma)
    )
    return below, above, sign


def _log_a_fractional(q: float, sigma: float, alphas: np.ndarray) -> np.ndarray:
    """Return log A_α for fractional orders: the two erfc series of MTZ19 §3.3, summed together."""
    from scipy import special  # on first use: see the note above __all__

    # Running signed log-sums per order; the series alternate in sign once i > α.
    log_sum = np.full(alphas.size, -np.inf)
    sign_sum = np.ones(alphas.size)
    active = np.arange(alphas.size)
    start, size = 0, _FIRST_CHUNK
    while active.size:
        i = np.arange(start, start + size, dtype=float)[None, :]
        below, above, sign = _series_terms(q, sigma, alphas[active], i)
        peak = np.maximum(below, above)  # NaN where either term is
        if (np.isnan(peak) | np.isposinf(peak)).any():  # such a term never falls below the stop
            raise ArithmeticError(f"the RDP series of q={q}, σ={sigma} has terms beyond float64")
        small = peak < _STOP_LOG_TERM
        stops = small.any(axis=1)
        # Keep terms up to and including the first small one (Opacus adds it before stopping).
        cut = np.where(stops, small.argmax(axis=1), size - 1)
        keep = np.arange(size)[None, :] <= cut[:, None]
        below, above = np.where(keep, below, -np.inf), np.where(keep, above, -np.inf)
        log_sum[active], sign_sum[active] = special.logsumexp(
            np.concatenate([log_sum[active, None], below, above], axis=1),
            b=np.concatenate([sign_sum[active, None], sign, sign], axis=1),
            axis=1,
            return_sign=True,
        )
        active = active[~stops]
        start, size = start + size, min(2 * size, _MAX_CHUNK)
    if np.any(sign_sum <= 0):
        raise ArithmeticError(f"the RDP series of q={q}, σ={sigma} summed to a non-positive value")
    return log_sum


@functools.lru_cache(maxsize=256)
def _rdp_of_step_cached(rate: float, noise: float, orders: tuple[float, ...]) -> np.ndarray:
    alphas = np.asarray(orders, dtype=float)
    if alphas.ndim != 1 or not np.all(np.isfinite(alphas) & (alphas > 1)):
        raise ValueError(f"orders must be finite and > 1, got {orders!r}")
    # Same precedence as Opacus: no sampling costs nothing, even without noise.
    if rate == 0:
        rdp = np.zeros_like(alphas)
    elif noise < _NEGLIGIBLE_NOISE:
        rdp = np.full_like(alphas, np.inf)
    elif rate == 1:
        rdp = alphas / (2 * noise**2)  # the plain Gaussian mechanism
    else:
        integer = alphas == np.round(alphas)
        log_a = np.empty_like(alphas)
        if integer.any():
            log_a[integer] = _log_a_integer(rate, noise, alphas[integer])
        if not integer.all():
            log_a[~integer] = _log_a_fractional(rate, noise, alphas[~integer])
        rdp = log_a / (alphas - 1)
    rdp.setflags(write=False)
    return rdp


def rdp_of_step(rate: float, noise: float, orders: Sequence[float] = DEFAULT_ORDERS) -> np.ndarray:
    """Return the RDP ε_α of one step of the sampled Gaussian mechanism at each order α.

    Parameters
    ----------
    rate : float
        Poisson sampling rate q, in [0, 1].
    noise : float
        Noise multiplier σ: the noise's standard deviation over the sensitivity.
    orders : sequence of float
        Rényi orders α, each finite and > 1.

    Returns
    -------
    numpy.ndarray
        ε_α per order (a fresh array); all ``inf`` when ``noise`` is 0 and ``rate`` is not.

    Notes
    -----
    Results are cached per ``(rate, noise, orders)``: a training loop asks for the same few
    settings every round, and the fractional series can take thousands of terms.
    """
    _check_charge(noise, rate)
    return _rdp_of_step_cached(float(rate), float(noise), tuple(float(a) for a in orders)).copy()


def epsilon_from_rdp(
    rdp: np.ndarray, delta: float, orders: Sequence[float] = DEFAULT_ORDERS
) -> tuple[float, float]:
    """Return the smallest ε, and the order that gives it, for a total RDP curve and ``delta``.

    Uses the conversion of Balle et al. 2020, Thm. 21, as Opacus's ``get_privacy_spent`` does.
    ε is clamped at 0; a curve that is 0 everywhere gives ``(0.0, nan)``, and one with no
    usable order (all NaN) gives ``(inf, nan)``.
    """
    _check_delta(delta)
    alphas = np.asarray(orders, dtype=float)
    rdp = np.asarray(rdp, dtype=float)
    if rdp.shape != alphas.shape:
        raise ValueError(f"rdp has shape {rdp.shape} but there are {alphas.size} orders")
    if np.all(rdp == 0):
        return 0.0, math.nan
    eps = rdp + np.log1p(-1 / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    if np.all(np.isnan(eps)):
        return math.inf, math.nan
    best = int(np.nanargmin(eps))
    return max(float(eps[best]), 0.0), float(alphas[best])


def default_delta(samples: int) -> float:
    """Return the δ used when none is given: the smaller of 1e-5 and 1/``samples``.

    δ well below 1/n is the usual rule (a δ of 1/n allows leaking one record outright);
    1e-5 is the customary ceiling for datasets up to 100,000 records.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples!r}")
    return min(1e-5, 1 / samples)


class RdpAccountant:
    """Compose charges of the sampled Gaussian mechanism; report ε(δ) on demand. One per node."""

    def __init__(self, orders: Sequence[float] = DEFAULT_ORDERS):
        self._orders = tuple(float(a) for a in orders)
        rdp_of_step(0.0, 1.0, self._orders)  # validates the orders
        # (noise, rate) -> steps charged, in first-seen order; the RDP total is kept alongside
        # so that epsilon() is one vector operation.
        self._history: dict[tuple[float, float], int] = {}
        self._rdp = np.zeros(len(self._orders))

    @property
    def orders(self) -> tuple[float, ...]:
        """The Rényi orders the curve is kept at."""
        return self._orders

    @property
    def steps(self) -> int:
        """Total steps charged, whatever their settings."""
        return sum(self._history.values())

    def spend(self, noise: float, rate: float, steps: int) -> None:
        """Charge ``steps`` steps of noise multiplier ``noise`` and sampling rate ``rate``."""
        _check_charge(noise, rate, steps)
        if steps == 0:
            return
        key = (float(noise), float(rate))
        self._history[key] = self._history.get(key, 0) + int(steps)
        self._rdp = self._rdp + steps * rdp_of_step(rate, noise, self._orders)

    def epsilon(self, delta: float) -> float:
        """Return ε spent so far at ``delta``; 0.0 when nothing was spent."""
        return epsilon_from_rdp(self._rdp, delta, self._orders)[0]

    def epsilon_after(self, noise: float, rate: float, steps: int, delta: float) -> float:
        """Return ε as if ``steps`` more steps were spent, without spending them.

        Lets a caller stop before a budget is exceeded rather than after.
        """
        _check_charge(noise, rate, steps)
        extra = steps * rdp_of_step(rate, noise, self._orders) if steps else 0.0
        return epsilon_from_rdp(self._rdp + extra, delta, self._orders)[0]

    def state_dict(self) -> dict:
        """Return the history, the orders and the RDP total as plain lists, for a checkpoint.

        The total is saved as summed, not rebuilt from the history on load: one charge of
        s₁ + s₂ steps is not, in floating point, the two charges the run made.
        """
        return {
            "history": [[noise, rate, steps] for (noise, rate), steps in self._history.items()],
            "orders": list(self._orders),
            "rdp": [float(value) for value in self._rdp],
        }

    def load_state_dict(self, state: dict) -> None:
        """Replace this accountant's charges with those of ``state`` (from :meth:`state_dict`).

        A state without ``rdp`` (saved before it was kept) is replayed from its history,
        which gives the same ε up to rounding.
        """
        required, optional = {"history", "orders"}, {"rdp"}
        missing, unexpected = sorted(required - set(state)), sorted(set(state) - required - optional)
        if missing or unexpected:
            raise ValueError(f"bad accountant state: missing keys {missing}, unexpected keys {unexpected}")
        if tuple(float(a) for a in state["orders"]) != self._orders:
            raise ValueError("accountant state was saved with other orders; build the accountant with those")
        fresh = RdpAccountant(self._orders)
        for entry in state["history"]:
            noise, rate, steps = entry
            fresh.spend(noise, rate, steps)
        if "rdp" in state:
            rdp = np.array(state["rdp"], dtype=float)
            if rdp.shape != fresh._rdp.shape:
                raise ValueError(
                    f"accountant state has an RDP total of shape {rdp.shape} for {len(self._orders)} orders"
                )
            fresh._rdp = rdp
        self._history, self._rdp = fresh._history, fresh._rdp
