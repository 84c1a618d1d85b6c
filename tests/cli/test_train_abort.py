"""``fedgossip train`` after an error on one rank: the job ends, and nothing runs after the message."""

from __future__ import annotations

import pytest

from fedgossip.cli import train as train_module


class _Exited(Exception):
    """What the patched ``os._exit`` raises, so the test can see the process end."""


class _ReturningAbort:
    """A communicator whose ``Abort`` returns, as MPICH's may before the launcher kills the job."""

    def __init__(self):
        self.codes: list[int] = []

    def Abort(self, code: int) -> None:  # mpi4py spells it so
        self.codes.append(code)


def test_abort_ends_the_process_even_when_mpi_abort_returns(monkeypatch):
    exits: list[int] = []

    def exit_now(code: int):
        exits.append(code)
        raise _Exited

    monkeypatch.setattr(train_module.os, "_exit", exit_now)
    comm = _ReturningAbort()
    with pytest.raises(_Exited):
        train_module._abort(comm, 1)
    assert comm.codes == [1] and exits == [1]
