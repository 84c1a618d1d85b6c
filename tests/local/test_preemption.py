"""SIGTERM asks for a stop at the next safe point; a second one interrupts at once."""

from __future__ import annotations

import os
import signal

import pytest
from mpi4py import MPI

from fedgossip.run.preemption import Preemption, preempt_on_sigterm


def test_sigterm_only_raises_the_flag_and_the_handler_is_put_back():
    before = signal.getsignal(signal.SIGTERM)
    preemption = Preemption()
    with preempt_on_sigterm(preemption):
        assert not preemption.agreed(MPI.COMM_SELF)
        os.kill(os.getpid(), signal.SIGTERM)
        assert preemption.requested and preemption.agreed(MPI.COMM_SELF)
        assert preemption.stopped_at is None  # set by the loop once it has really stopped
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_sigterm_interrupts_a_job_that_does_not_reach_its_next_round():
    preemption = Preemption()
    with preempt_on_sigterm(preemption), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
