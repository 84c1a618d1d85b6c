"""select_device and node_local_rank: ranks map onto their host's GPUs, or the CPU."""

from __future__ import annotations

import pytest
import torch

from fedgossip.errors import ConfigError
from fedgossip.local.device import node_local_rank, select_device


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


@pytest.mark.parametrize("local_rank", [0, 3, 17])
def test_cpu_is_the_cpu_for_every_rank(local_rank):
    assert select_device("cpu", local_rank) == torch.device("cpu")


def test_auto_falls_back_to_the_cpu_without_cuda(no_cuda):
    assert select_device("auto", 2) == torch.device("cpu")


@pytest.mark.parametrize("local_rank,gpu", [(0, 0), (3, 3), (5, 1), (8, 0)])
def test_auto_spreads_the_ranks_of_a_host_over_its_gpus(four_gpus, local_rank, gpu):
    assert select_device("auto", local_rank) == torch.device("cuda", gpu)
    assert select_device("cuda", local_rank) == torch.device("cuda", gpu)


def test_cuda_without_cuda_is_refused_with_the_fix(no_cuda):
    with pytest.raises(ConfigError, match=r"CUDA is not available.*use --device cpu"):
        select_device("cuda", 0)


def test_unknown_device_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown device 'tpu'; choose one of auto, cpu, cuda"):
        select_device("tpu", 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_a_usable_gpu():
    device = select_device("cuda", 0)
    assert torch.ones(2, device=device).sum().item() == 2.0


def test_node_local_rank_splits_by_shared_memory_and_frees_the_split():
    MPI = pytest.importorskip("mpi4py.MPI")
    calls = []

    class Local:
        def Get_rank(self):
            return 2

        def Free(self):
            calls.append("free")

    class Comm:
        def Split_type(self, split_type):
            calls.append(split_type)
            return Local()

    assert node_local_rank(Comm()) == 2
    assert calls == [MPI.COMM_TYPE_SHARED, "free"]


def test_node_local_rank_of_a_single_process_is_zero():
    MPI = pytest.importorskip("mpi4py.MPI")
    assert node_local_rank(MPI.COMM_SELF) == 0
