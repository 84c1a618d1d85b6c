"""Every compressor's packets cross a real MPI link intact, with the size the header promises."""

from fedgossip.compress import COMPRESSORS

SPECS = [
    "none",
    "fp16",
    "bf16",
    "qsgd:bits=2",
    "qsgd:bits=5",
    "qsgd:bits=9",
    "uniform:bits=8",
    "uniform:bits=3,rounding=stochastic",
    "sign:block=64",
    "topk:ratio=0.01",  # positions as a list at 4099 values
    "topk:ratio=0.1",  # positions as a bitmap at 4099 values
    "randk:ratio=0.3",
]


def test_every_installed_compressor_is_sent_over_mpi():
    listed = {spec.partition(":")[0] for spec in SPECS}
    assert set(COMPRESSORS.available()) <= listed, "add a spec of the new compressor to SPECS"


def test_packets_arrive_whole_and_decode_bit_identically_on_both_ranks(mpirun, script):
    # One mpiexec for all compressors: starting the ranks costs more than the packets.
    done = mpirun(2, *script("packets_roundtrip.py"), *SPECS, timeout=120)
    assert done.returncode == 0, done.output
    for spec in SPECS:
        assert f"ok {spec} n=4099 " in done.stdout, done.output
    assert f"ok all {len(SPECS)} specs" in done.stdout, done.output
