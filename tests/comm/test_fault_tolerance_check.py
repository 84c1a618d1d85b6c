"""Which MPI may run `--on-failure continue`: only Open MPI 5 launched with `--with-ft ulfm`."""

from __future__ import annotations

import pytest

from fedgossip.comm.fault_tolerance import ulfm_missing

OPEN_MPI_5 = "Open MPI v5.0.11, package: Open MPI builder, ident: 5.0.11, repo rev: v5.0.11\n"
MPICH = "MPICH Version:      5.0.2\nMPICH Release date: unreleased\n"


def test_open_mpi_5_with_ft_enabled_is_accepted():
    assert ulfm_missing(OPEN_MPI_5, {"OMPI_MCA_mpi_ft_enable": "1"}) is None
    assert ulfm_missing(OPEN_MPI_5, {"OMPI_MCA_mpi_ft_enable": "true"}) is None


@pytest.mark.parametrize(
    "version, environ, reason",
    [
        (
            MPICH,
            {"OMPI_MCA_mpi_ft_enable": "1"},
            "this MPI is MPICH Version: 5.0.2, which has no working ULFM",
        ),
        (OPEN_MPI_5, {}, "launched without fault tolerance (mpirun --with-ft ulfm)"),
        (OPEN_MPI_5, {"OMPI_MCA_mpi_ft_enable": "0"}, "launched without fault tolerance"),
        ("Open MPI v4.1.6, package: x\n", {"OMPI_MCA_mpi_ft_enable": "1"}, "ULFM needs Open MPI 5"),
        ("", {}, "this MPI is an unknown MPI"),
    ],
)
def test_other_mpis_are_refused_with_the_reason(version, environ, reason):
    assert reason in ulfm_missing(version, environ)
