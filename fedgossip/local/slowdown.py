"""Stretch each local step of a slowed node (``--slowdown``) by sleeping after it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["StepStretcher"]


class StepStretcher:
    """Make every local step last ``factor`` times as long, by sleeping after it.

    Parameters
    ----------
    factor
        This rank's slowdown, >= 1 (from :meth:`Slowdown.factors`).
    sleep
        Waits the given seconds; tests pass a fake one.
    clock
        Reads seconds. :class:`~fedgossip.local.trainer.LocalTrainer` times its steps with
        it too, so the time measured and the time stretched come from the same clock.
    """

    def __init__(
        self,
        factor: float,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ):
        if not factor >= 1:  # also refuses NaN
            raise ValueError(f"expecting a slowdown factor >= 1, got {factor}")
        self.factor = factor
        self.clock = clock
        self._sleep = sleep

    def stretch(self, step_seconds: float) -> float:
        """Sleep (factor − 1)·``step_seconds`` and return the seconds that actually passed."""
        if self.factor == 1 or step_seconds <= 0:
            return 0.0
        start = self.clock()
        self._sleep((self.factor - 1) * step_seconds)
        return self.clock() - start
