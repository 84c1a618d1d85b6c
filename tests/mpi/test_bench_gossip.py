"""``bench gossip`` runs real mpiexec jobs and tables accuracy against bytes beside fp32 gossip."""

import io

from rich.console import Console

from fedgossip.bench.gossip import SCENARIOS, Scenario, bench_gossip
from fedgossip.report.bench import render_gossip


def test_gossip_benchmark_compares_every_scenario_with_fp32(tmp_path):
    scenarios = (SCENARIOS[0], Scenario("8-bit", "dpsgd", "uniform:bits=8", 100.0, 3.9))
    result = bench_gossip(tmp_path, ranks=2, rounds=2, scenarios=scenarios)
    reference, eight_bit = result["rows"]
    assert reference["bytes_ratio_to_fp32"] == 1.0 and reference["accuracy_drop_points"] == 0.0
    expected = reference["bytes_sent_total"] / eight_bit["bytes_sent_total"]
    assert eight_bit["bytes_ratio_to_fp32"] == expected and expected > 3.9
    assert eight_bit["targets"] == {"accuracy within 100.0 points": True, "≥ 3.9× fewer bytes": True}
    assert (tmp_path / "runs" / "8-bit" / "summary.json").exists()
    console = Console(file=io.StringIO(), width=80)
    render_gossip(result, console)
    table = console.file.getvalue()
    assert "8-bit" in table and f"{expected:.3g}×" in table
    assert max(len(line) for line in table.splitlines()) <= 80
