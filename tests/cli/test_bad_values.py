"""Bad values on the command line: each is refused before any work, with one line saying what was wrong.

Click's usage errors (a wrong type, a value out of an option's range) exit 2;
fedgossip's own errors exit 1 with one ``error:`` line. ``fedgossip train`` runs
in-process as a single MPI rank: every row must fail while the run is set up, and
a row that reached a training step fails its test instead of training.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli
from fedgossip.cli.train import train
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.local.trainer import LocalTrainer

TRAIN = ("train", "--data", "{data}", "--rounds", "1", "--out", "{tmp}/results")
TOML = {  # name -> content of a --config file
    "malformed": "rounds = [\n",
    "not-utf-8": b"\xff\xfe rounds = 1\n",
    "misspelt": "roundz = 3\n",
    "algorithm-a-number": "algorithm = 3\n",
    "batch-size-a-string": 'batch-size = "ten"\n',
    "seed-negative": "seed = -1\n",
    "local-epochs-a-boolean": "local-epochs = true\n",
    "gamma-a-boolean": "gamma = true\n",
    "name-a-number": "name = 5\n",
    "vectorize-a-string": 'vectorize = "yes"\n',
    "stall-timeout-a-string": 'stall-timeout = "ten"\n',
    "on-failure-unknown": 'on-failure = "retry"\n',
    "availability-a-number": "availability = 0.5\n",
}
# {tmp}/NAME.py -> content: user model files (--model FILE.py:Class) for the rows below
USER_MODELS = {
    "syntax": "class Net(nn.Module:\n",
    "raises": "raise RuntimeError('boom at import')\n",
    "net": """\
import math
from torch import nn


class Net(nn.Module):
    def __init__(self, input_shape, num_classes, width: int = 8):
        super().__init__()
        self.layer = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x):
        return self.layer(x.flatten(1))


class NotAModule:
    pass


def function(input_shape, num_classes):
    return Net(input_shape, num_classes)


class NoShape(nn.Module):
    def __init__(self):
        super().__init__()


class Refuses(Net):
    def __init__(self, input_shape, num_classes):
        raise ValueError(f"only 3 classes, not {num_classes}")


class WrongOutput(Net):
    def forward(self, x):
        return self.layer(x.flatten(1))[:, :3]


class Norm(Net):
    def __init__(self, input_shape, num_classes):
        super().__init__(input_shape, num_classes)
        self.norm = nn.BatchNorm1d(num_classes)
""",
}
TRACES = {  # name -> an --availability trace file's content
    "gap": "0,1,5\n",
    "unknown": "0,0,5\n3,0,5\n",
    "overlap": "0,0,2\n0,1,3\n",
    "malformed": "a,b\n",
}
CUDA_MISSING = pytest.mark.skipif(torch.cuda.is_available(), reason="this host has CUDA: the run would train")


def _config(name: str) -> str:
    return "{tmp}/" + name + ".toml"


# (options after TRAIN, exit code, what the message says), covering every option of `fedgossip train`
TRAIN_ROWS = [
    (["--data", "{tmp}/nowhere"], 1, "nowhere is not a partition directory (it does not exist)"),
    (["--data", "{tmp}/a-file"], 2, "'{tmp}/a-file' is a file"),
    (["--data", "{tmp}"], 1, "partition.json is missing"),
    (["--algorithm", "nosuch"], 1, "unknown algorithm 'nosuch'; known: allreduce"),
    (["--algorithm", "dpsgd:x=1"], 1, "unknown parameter 'x' (parameters of dpsgd: gamma)"),
    (["--algorithm", "dpsgd:gamma=0"], 1, "gamma='0': must be > 0 and <= 1"),
    (["--algorithm", "fedavg:client_fraction=2"], 1, "client_fraction='2': must be > 0 and <= 1"),
    (["--algorithm", ""], 1, "empty plugin name in spec ''"),
    (["--algorithm", "gt:outer_lr=3"], 1, "outer_lr='3': must be > 0 and <= 2"),
    (["--algorithm", "gt:outer_lr=0"], 1, "outer_lr='0': must be > 0 and <= 2"),
    (["--algorithm", "gt:outer_lr=nan"], 1, "outer_lr='nan': must be a finite number"),
    (["--algorithm", "gt:gamma=0"], 1, "gamma='0': must be > 0 and <= 1"),
    (["--algorithm", "gt:gamma=abc"], 1, "gamma='abc': expected a number"),
    (["--algorithm", "gt", "--async"], 1, "--async applies to swarm only; gt runs in synchronous rounds"),
    (["--algorithm", "d2:lazy=maybe"], 1, "lazy='maybe': expected true or false"),
    (["--algorithm", "d2:gamma=0.5"], 1, "d2 has no such setting"),
    (
        ["--algorithm", "d2", "--compressor", "qsgd:bits=4"],
        1,
        "d2 cannot use the lossy --compressor qsgd: D² mixes whole models",
    ),
    (["--topology", "nosuch"], 1, "unknown topology 'nosuch'; known:"),
    (["--topology", "random-regular:degree=abc"], 1, "degree='abc': expected an integer"),
    (["--topology", "erdos-renyi:p=2"], 1, "p='2': must be > 0 and <= 1"),
    (["--topology", "file:path={tmp}/no-edges.txt"], 1, "cannot read edge list {tmp}/no-edges.txt"),
    (["--topology-seed", "-1"], 2, "-1 is not in the range x>=0"),
    (["--topology-seed", "abc"], 2, "'abc' is not a valid integer"),
    (["--compressor", "nosuch"], 1, "unknown compressor 'nosuch'; known:"),
    (["--compressor", "qsgd:bits"], 1, "expected key=value after 'qsgd:' in spec 'qsgd:bits', got 'bits'"),
    (["--compressor", "qsgd:bits=x"], 1, "bits='x': expected an integer"),
    (["--compressor", "qsgd:bits=4,bits=5"], 1, "parameter 'bits' given twice"),
    (["--compressor", "qsgd:bits=99"], 1, "bits='99': must be >= 2 and <= 9"),
    (["--compressor", "qsgd:bits=1"], 1, "bits='1': must be >= 2 and <= 9"),  # one bit is only the sign
    (["--compressor", "topk:ratio=2"], 1, "ratio='2': must be > 0 and <= 1"),
    (["--compressor", ":x=1"], 1, "empty plugin name in spec ':x=1'"),
    (
        ["--compressor", "qsgd:bits=4", "--algorithm", "allreduce"],
        1,
        "allreduce cannot use the lossy --compressor qsgd: it averages exact float32 models",
    ),
    (["--model", "nosuch"], 1, "unknown model 'nosuch'; known:"),
    (["--model", "mlp:hidden=0"], 1, "hidden='0': must be >= 1"),
    (["--model", "mlp:hidden=abc"], 1, "hidden='abc': expected an integer"),
    (["--model", "cnn:nosuch=1"], 1, "unknown parameter 'nosuch' (parameters of cnn:"),
    (["--model", "mlp:hiden=3"], 1, "unknown parameter 'hiden' (parameters of mlp: hidden, layers)"),
    # 75 billion parameters: 559 GiB of model and gradient, more than any host this runs on
    (["--model", "mlp:hidden=1000000000"], 1, "has 75,000,000,010 parameters: a node needs at least 558"),
    (["--model", "mlp:hidden=" + "9" * 30], 1, "parameters: a node needs at least"),
    (["--model", "cnn:channels=1000000000"], 1, "cannot be built: Storage size calculation overflowed"),
    (["--model", "{tmp}/none.py:Net"], 1, "--model: no such file {tmp}/none.py; check the path"),
    (["--model", "{tmp}/net.py"], 1, "expected FILE.py:ClassName or package.module:ClassName"),
    (["--model", "net:Net"], 1, "got 'Net'; for your own class write net.py:Net (a file) or package.net:Net"),
    (["--model", "{tmp}/net.py:Net:width"], 1, "expected key=value after 'Net:'"),
    (["--model", "{tmp}/syntax.py:Net"], 1, "{tmp}/syntax.py line 1: SyntaxError: "),
    (["--model", "{tmp}/raises.py:Net"], 1, "importing {tmp}/raises.py raised RuntimeError: boom at import"),
    (["--model", "{tmp}/a-file"], 1, "--model {tmp}/a-file: expected FILE.py:ClassName or"),
    (["--model", "nosuch_package.models:Net"], 1, "--model: no module named 'nosuch_package'"),
    (["--model", "{tmp}/net.py:Nope"], 1, "{tmp}/net.py defines no class 'Nope'; it defines Net, NoShape"),
    (["--model", "{tmp}/net.py:NotAModule"], 1, "NotAModule is a class but not a subclass of torch.nn.Mod"),
    (["--model", "{tmp}/net.py:function"], 1, "function is a function but not a subclass of torch.nn.Mod"),
    (["--model", "{tmp}/net.py:NoShape"], 1, "NoShape() cannot be called as NoShape(input_shape, num_cla"),
    (["--model", "{tmp}/net.py:Net:depth=3"], 1, "unexpected keyword argument 'depth'"),
    (["--model", "{tmp}/net.py:Net:width=wide"], 1, "net.py:Net:width=wide: width=wide is not a valid int"),
    (["--model", "{tmp}/net.py:Refuses"], 1, "num_classes=10) raised ValueError: only 3 classes, not 10"),
    (["--model", "{tmp}/net.py:WrongOutput"], 1, "[batch, num_classes] = [2, 10] for input [batch, *input_"),
    (["--model", "{tmp}/net.py:Norm"], 1, "BatchNorm1d keeps running statistics, which gossip does not"),
    (["--nodes", "0"], 2, "0 is not in the range x>=1"),
    (["--nodes", "two"], 2, "'two' is not a valid integer"),
    (["--nodes", "7"], 1, "--nodes 7 of dpsgd need 7 shards, but {data} has"),
    (
        ["--nodes", "1", "--algorithm", "fedavg"],
        1,
        "fedavg needs a server and at least one client, 2 nodes, but --nodes 1 gives 1; give --nodes 2",
    ),
    (["--rounds", "0"], 2, "0 is not in the range x>=1"),
    (["--rounds", "-1"], 2, "-1 is not in the range x>=1"),
    (["--rounds", "abc"], 2, "'abc' is not a valid integer"),
    (["--rounds", "1.5"], 2, "'1.5' is not a valid integer"),
    (["--local-steps", "0"], 1, "local-steps must be a positive integer or geometric:mean=H"),
    (["--local-steps", "abc"], 1, "local-steps must be a positive integer or geometric:mean=H"),
    (["--local-steps", "geometric:mean=0"], 1, "mean='0': must be >= 1"),
    (["--local-steps", "geometric"], 1, "missing required parameter 'mean'"),
    (["--local-steps", "geometric:mean=1e300"], 1, "mean='1e300': must be >= 1 and <= 1000000"),
    (["--local-steps", "10000000"], 1, "geometric:mean=H (1 <= H <= 1,000,000), got 10000000"),
    (["--local-epochs", "0"], 2, "0 is not in the range x>=1"),
    (["--local-epochs", "abc"], 2, "'abc' is not a valid integer"),
    (["--local-epochs", "1000000000"], 1, "--local-epochs 1000000000 makes 45,000,000,000 local steps"),
    (
        ["--local-epochs", "1", "--local-steps", "3"],
        1,
        "give either --local-steps or --local-epochs, not both",
    ),
    (["--batch-size", "0"], 2, "0 is not in the range x>=1"),
    (["--batch-size", "abc"], 2, "'abc' is not a valid integer"),
    (["--optimizer", "nosuch"], 1, "unknown optimizer 'nosuch'; known: sgd, adam, amsgrad"),
    (["--optimizer", "amsgrad:beta1=2"], 1, "beta1='2': must be >= 0 and < 1"),
    (["--optimizer", "sgd:x=1"], 1, "unknown parameter 'x' (parameters of sgd: none)"),
    (["--optimizer", "sgd:momentum=qgm"], 1, "unknown parameter 'momentum' (parameters of sgd: none)"),
    (["--optimizer", "qgm:mu=1"], 1, "mu='1': must be >= 0 and < 1"),
    (["--optimizer", "qgm:mu=x"], 1, "mu='x': expected a number"),
    (["--optimizer", "qgm:beta1=0.9"], 1, "unknown parameter 'beta1' (parameters of qgm: mu)"),
    (
        ["--optimizer", "qgm", "--algorithm", "comp-ams"],
        1,
        "comp-ams applies AMSGrad to the averaged gradient, not qgm",
    ),
    (["--lr", "-1"], 2, "-1.0 is not in the range x>=0"),
    (["--lr", "abc"], 2, "'abc' is not a valid float"),
    (["--lr", "inf"], 1, "lr must be a finite number ≥ 0, got inf"),
    (["--lr", "nan"], 1, "lr must be a finite number ≥ 0, got nan"),
    (["--lr", "1e308"], 1, "lr 1e+308 overflows float32, in which the models train; give at most 3.403e+38"),
    (["--momentum", "1"], 2, "1.0 is not in the range 0<=x<1"),
    (["--momentum", "nan"], 1, "momentum must be a finite number ≥ 0, got nan"),
    (["--weight-decay", "-1"], 2, "-1.0 is not in the range x>=0"),
    (["--weight-decay", "inf"], 1, "weight-decay must be a finite number ≥ 0, got inf"),
    (["--weight-decay", "1e39"], 1, "weight-decay 1e+39 overflows float32"),
    (["--lr-schedule", "linear"], 2, "'linear' is not one of 'constant', 'cosine'"),
    (["--client-fraction", "0"], 2, "0.0 is not in the range 0<x<=1"),
    (["--client-fraction", "nan"], 1, "client-fraction must lie in (0, 1], got nan"),
    (["--client-fraction", "0.5"], 1, "--client-fraction applies to fedavg (share of clients sampled per"),
    (["--gamma", "2"], 2, "2.0 is not in the range 0<x<=1"),
    (["--gamma", "nan"], 1, "gamma must lie in (0, 1], got nan"),
    (
        ["--gamma", "0.5", "--algorithm", "swarm"],
        1,
        "--gamma applies to dpsgd (CHOCO-gossip's consensus step",
    ),
    (
        ["--gamma", "0.5", "--algorithm", "dpsgd:gamma=0.25"],
        1,
        "--gamma 0.5 and --algorithm dpsgd:gamma=0.25 set",
    ),
    (["--async"], 1, "--async applies to swarm only; dpsgd runs in synchronous rounds"),
    (["--slowdown", "nosuch"], 1, "slowdown 'nosuch': unknown kind 'nosuch'"),
    (["--slowdown", "fixed:factor=0.5"], 1, "factor='0.5': must be >= 1"),
    (["--slowdown", "fixed:factor=1e308"], 1, "factor='1e308': must be >= 1 and <= 10000"),
    (["--slowdown", "ranks=5:factor=4"], 1, "names rank 5, but the world has 1 ranks"),
    (["--link", "bandwidth=abc"], 1, "invalid --link 'bandwidth=abc'"),
    (["--link", "bandwidth=0"], 1, "bandwidth='0': needs a unit"),
    (["--link", "latency=-1ms"], 1, "latency='-1ms': must be a finite number >= 0"),
    (["--link", "nosuch=1"], 1, "unknown key 'nosuch' (keys: bandwidth, latency)"),
    (["--availability", "nosuch"], 1, "availability 'nosuch': unknown kind 'nosuch'; accepted forms: always"),
    (["--availability", "bernoulli:p=0"], 1, "p='0': must be > 0 and <= 1"),
    (["--availability", "bernoulli:p=1.5"], 1, "p='1.5': must be > 0 and <= 1"),
    (["--availability", "markov:online=0,offline=2"], 1, "online='0': must be >= 1"),
    (["--availability", "markov:online=2,offline=-1"], 1, "offline='-1': must be >= 1"),
    (["--availability", "bernoulli:p=0.001"], 1, "leaves no node online in 1 of 1 rounds (round 0)"),
    (["--availability", "trace:path={tmp}/gap.csv"], 1, "leaves no node online in 1 of 1 rounds"),
    (["--availability", "trace:path={tmp}/unknown.csv"], 1, "names node 3, but the run has 1 nodes"),
    (["--availability", "trace:path={tmp}/overlap.csv"], 1, "node 0's intervals [0, 2) and [1, 3) overlap"),
    (["--availability", "trace:path={tmp}/malformed.csv"], 1, "line 1 is 'a,b', expected three integers"),
    (["--availability", "trace:path={tmp}/missing.csv"], 1, "missing.csv' does not exist; give a CSV"),
    (["--availability", "bernoulli:p=0.5", "--algorithm", "gt"], 1, "bernoulli:p=0.5 is not supported by gt"),
    (["--availability", "markov:online=4,offline=2", "--algorithm", "d2"], 1, "is not supported by d2"),
    (["--availability", "bernoulli:p=0.9", "--algorithm", "comp-ams"], 1, "is not supported by comp-ams"),
    (
        ["--availability", "bernoulli:p=0.5", "--compressor", "qsgd:bits=4", "--robust", "clip:tau=1"],
        1,
        "a lossy --compressor (CHOCO-gossip) cannot be combined with --attack or --robust",
    ),
    (["--dp", "nosuch"], 1, "unknown privacy mechanism 'nosuch'; known: dp-sgd, dp-update"),
    (["--dp", "dp-sgd:clip=-1,noise=1"], 1, "clip='-1': must be > 0"),
    (["--dp", ""], 1, "dp must be a mechanism spec such as dp-sgd:clip=1,noise=1.1, got ''"),
    (["--dp-delta", "0"], 2, "0.0 is not in the range 0<x<1"),
    (["--dp-delta", "abc"], 2, "'abc' is not a valid float"),
    (["--dp-delta", "1e-5"], 1, "dp-delta applies to private training only; add --dp"),
    (["--dp-target-epsilon", "0"], 2, "0.0 is not in the range x>0"),
    (["--dp-target-epsilon", "inf"], 1, "dp-target-epsilon must be a finite number > 0"),
    (["--dp-target-epsilon", "8"], 1, "dp-target-epsilon applies to private training only"),
    (
        ["--dp", "dp-sgd:clip=1,noise=0", "--dp-target-epsilon", "8"],
        1,
        "--dp-target-epsilon 8 would stop training before it starts: --dp dp-sgd:clip=1.0,noise=0.0 adds no "
        "noise, so its ε is infinite; give it noise > 0 (e.g. noise=1.1) or drop --dp-target-epsilon",
    ),
    (
        ["--dp", "dp-sgd:clip=1,noise=1e-300", "--dp-target-epsilon", "8"],
        1,
        "--dp-target-epsilon 8 would stop training before it starts: the first round of node 0",
    ),
    (
        ["--dp", "dp-update:clip=1,noise=0.3", "--dp-target-epsilon", "0.1"],
        1,
        "--dp-target-epsilon 0.1 would stop training before it starts: the first round of node 0",
    ),
    (["--deterministic"], 1, "deterministic applies to private training only"),
    (["--filter", "nosuch"], 1, "unknown plugin 'nosuch'; known:"),
    (["--filter", "hide:fraction=2"], 1, "fraction='2': must be >= 0 and < 1"),
    (["--share-data", "nosuch=1"], 1, "unknown parameter 'nosuch' (parameters of share-data:"),
    (["--share-data", "budget=0"], 1, "budget='0': must be >= 1"),
    (["--plugin", "nosuch"], 1, "unknown plugin 'nosuch'; known:"),
    (["--plugin", ""], 1, "plugin must be a list of plugin specs"),
    (["--attack", "sign-flip"], 1, "--attack sign-flip needs --attackers: node ids (3,7) or fraction=F"),
    (["--attackers", "0"], 1, "--attackers 0 needs --attack"),
    (["--attack", "nosuch", "--attackers", "0"], 1, "unknown attack 'nosuch'; known: alie"),
    (["--attack", "alie:z=-1", "--attackers", "0"], 1, "z='-1': must be > 0"),
    (["--attack", "alie", "--attackers", "5"], 1, "--attackers 5: the run has nodes 0-0"),
    (["--attack", "alie", "--attackers", "0"], 1, "--attackers 0 makes every node an attacker"),
    (["--attack", "alie", "--attackers", "fraction=2"], 1, "the fraction must lie in (0, 1)"),
    (["--attack", "alie", "--attackers", "1,1"], 1, "--attackers 1,1 names a node twice"),
    (["--robust", "nosuch"], 1, "unknown aggregator 'nosuch'; known: clip"),
    (["--robust", "trimmed-mean:b=1"], 1, "trimmed-mean:b=1 drops 2 of 1 values per coordinate"),
    (["--robust", "krum"], 1, "--robust krum cannot stand where dpsgd combines (a neighbourhood)"),
    (["--robust", "clip", "--algorithm", "allreduce"], 1, "--robust cannot be carried by allreduce"),
    (
        ["--robust", "median", "--algorithm", "swarm", "--async"],
        1,
        "--robust cannot be carried by swarm --async",
    ),
    (["--eval-every", "0"], 2, "0 is not in the range x>=1"),
    (["--checkpoint-every", "-1"], 2, "-1 is not in the range x>=0"),
    (["--checkpoint-every", "abc"], 2, "'abc' is not a valid integer"),
    (["--stall-timeout", "0"], 2, "0.0 is not in the range 0<x<=10000000.0"),
    (["--stall-timeout", "-5"], 2, "-5.0 is not in the range 0<x<=10000000.0"),
    (["--stall-timeout", "1e308"], 2, "1e+308 is not in the range 0<x<=10000000.0"),
    (["--stall-timeout", "abc"], 2, "'abc' is not a valid float"),
    (
        ["--stall-timeout", "nan"],
        1,
        "stall-timeout must be a number of seconds in (0, 1e7], e.g. 600, got nan",
    ),
    (
        ["--config", _config("stall-timeout-a-string")],
        1,
        "stall-timeout must be a number of seconds in (0, 1e7]",
    ),
    (["--on-failure", "retry"], 2, "'retry' is not one of 'abort', 'continue'"),
    (
        ["--config", _config("on-failure-unknown")],
        1,
        "on-failure must be one of abort, continue, got 'retry'",
    ),
    # this suite's MPI is MPICH: no working ULFM, so continue is refused with how to get Open MPI's
    (
        ["--on-failure", "continue"],
        1,
        "--on-failure continue needs an MPI with ULFM fault tolerance: this MPI is MPICH",
    ),
    (["--seed", "abc"], 2, "'abc' is not a valid integer"),
    (["--seed", "-1"], 1, "seed must be an integer from 0 to 2**64 - 1, got -1"),
    (["--seed", str(2**64)], 1, f"seed must be an integer from 0 to 2**64 - 1, got {2**64}"),
    (["--device", "tpu"], 2, "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
    pytest.param(["--device", "cuda"], 1, "CUDA is not available on this host", marks=CUDA_MISSING),
    (["--out", "{tmp}/a-file"], 2, "'{tmp}/a-file' is a file"),
    (["--out", "{tmp}/a-file/sub"], 1, "part of that path is a file"),
    (["--name", "../escape"], 1, "run name '../escape' must be one directory name, without '/'"),
    (["--name", ".."], 1, "run name '..' must be one directory name"),
    (["--name", ""], 1, "name '' is empty; give a run directory name, or leave --name out for the automatic"),
    (["--name", "  "], 1, "name '  ' is empty"),
    (["--name", "x" * 300], 1, "File name too long"),
    (["--config", "{tmp}/missing.toml"], 1, "--config {tmp}/missing.toml does not exist"),
    (["--config", "{tmp}"], 2, "'{tmp}' is a directory"),
    (
        ["--config", "{tmp}/fifo.toml"],
        1,
        "--config {tmp}/fifo.toml is not a regular file (it is a FIFO)",
    ),  # a read would wait for ever
    (
        ["--config", "/dev/zero"],
        1,
        "--config /dev/zero is not a regular file (it is a character device)",
    ),  # a read would fill memory
    (["--config", _config("malformed")], 1, "malformed.toml is not valid TOML"),
    (["--config", _config("not-utf-8")], 1, "not-utf-8.toml is not valid TOML"),
    (["--config", _config("misspelt")], 1, "has unknown settings roundz; known: algorithm"),
    (["--config", _config("misspelt")], 1, "did you mean rounds?"),
    (["--config", _config("algorithm-a-number")], 1, "algorithm must be a spec in quotes, got 3"),
    (["--config", _config("batch-size-a-string")], 1, "batch-size must be a positive integer, got 'ten'"),
    (["--config", _config("seed-negative")], 1, "seed must be an integer from 0 to 2**64 - 1, got -1"),
    (["--config", _config("local-epochs-a-boolean")], 1, "local-epochs must be a positive integer, got True"),
    (["--config", _config("gamma-a-boolean")], 1, "gamma must lie in (0, 1], got True"),
    (["--config", _config("vectorize-a-string")], 1, "vectorize must be true or false, got 'yes'"),
    (["--config", _config("availability-a-number")], 1, "availability must be a spec in quotes, got 0.5"),
    (["--config", _config("name-a-number")], 1, "name must be a run name in quotes, got 5"),
    (["--resume", "{tmp}/nowhere"], 2, "'{tmp}/nowhere' does not exist"),
    (["--resume", "{data}"], 1, "run.json is missing, so {data} is not a run directory"),
    (["--resume", "{data}", "--config", _config("misspelt")], 1, "--resume takes the run's own settings"),
    (["--nosuch"], 2, "No such option '--nosuch'"),
]


def _create(*args: str, out: str = "{tmp}/new") -> list[str]:
    return ["partition", "create", *args, "--out", out]


BENCH = ["bench", "partition", "--out", "{tmp}/bench"]
OTHER_ROWS = [
    (_create("digits", "--nodes", "0"), 2, "0 is not in the range x>=1"),
    (_create("digits", "--nodes", "abc"), 2, "'abc' is not a valid integer"),
    (_create("digits", "--nodes", str(10**12)), 1, "cannot give each of 1000000000000 nodes a sample"),
    (_create("nosuch", "-n", "2"), 1, "unknown dataset 'nosuch'; known:"),
    (_create("digits:nosuch=1", "-n", "2"), 1, "unknown parameter 'nosuch' (parameters of digits: none)"),
    (_create("csv:path={tmp}/none.csv,label=y", "-n", "2"), 1, "{tmp}/none.csv does not exist"),
    (_create("digits", "-n", "2", "--scheme", "nosuch"), 1, "unknown partitioner 'nosuch'; known:"),
    (_create("digits", "-n", "2", "--scheme", "dirichlet:alpha=-1"), 1, "alpha='-1': must be > 0"),
    (_create("digits", "-n", "2", "--scheme", "dirichlet:alpha"), 1, "expected key=value after"),
    (_create("digits", "-n", "2", "--scheme", "iid:x=1,x=2"), 1, "parameter 'x' given twice"),
    (_create("digits", "-n", "2", "--scheme", ":alpha=1"), 1, "empty plugin name in spec ':alpha=1'"),
    (_create("digits", "-n", "2", "--seed", "abc"), 2, "'abc' is not a valid integer"),
    (_create("digits", "-n", "2", "--seed", "-1"), 2, "-1 is not in the range 0<=x<=4294967295"),
    (_create("digits", "-n", "2", "--test-fraction", "0"), 2, "0.0 is not in the range 0<x<1"),
    (_create("digits", "-n", "2", "--test-fraction", "abc"), 2, "'abc' is not a valid float"),
    (_create("digits", "-n", "2", "--test-fraction", "nan"), 1, "--test-fraction must lie strictly between"),
    (_create("digits", "-n", "2", out="{tmp}/a-file"), 2, "'{tmp}/a-file' is a file"),
    (
        _create("digits", "-n", "2", out="{tmp}/a-file/sub"),
        1,
        "cannot create {tmp}/a-file/sub: {tmp}/a-file is a file, not a directory",
    ),
    (_create("digits", "-n", "2", out="{tmp}/" + "x" * 300), 1, "(File name too long); choose another --out"),
    (_create("digits", "-n", "2", out="{data}"), 1, "already exists; choose another --out or pass --force"),
    ([*_create("digits", "-n", "2", out="{tmp}"), "--force"], 1, "is not a partition directory; refusing"),
    (["summary", "{tmp}/nowhere"], 1, "nowhere is not a run directory (it does not exist)"),
    (["summary", "{tmp}/a-file"], 2, "'{tmp}/a-file' is a file"),
    (["summary", "{data}"], 1, "run.json is missing, so {data} is not a run directory"),
    (["summary", "{tmp}/broken-run"], 1, "broken-run/run.json is not readable JSON"),
    (["bench", "churn", "--availabilities", "1,0"], 2, "'0' in '1,0': give comma-separated probabilities"),
    (["bench", "churn", "--availabilities", "x"], 2, "'x' in 'x': give comma-separated probabilities"),
    ([*BENCH, "--nodes", "0"], 2, "0 is not in the range x>=1"),
    ([*BENCH, "--nodes", "abc"], 2, "'abc' is not a valid integer"),
    ([*BENCH, "--samples", "0"], 2, "0 is not in the range x>=1"),
    ([*BENCH, "--classes", "0"], 2, "0 is not in the range x>=1"),
    ([*BENCH, "--repeats", "0"], 2, "0 is not in the range x>=1"),
    ([*BENCH, "--scheme", "nosuch"], 1, "unknown partitioner 'nosuch'; known:"),
    ([*BENCH, "--scheme", "dirichlet:alpha=x"], 1, "alpha='x': expected a number"),
    ([*BENCH, "--nodes", "100", "--samples", "10"], 1, "cannot give each of 100 nodes a sample"),
    ([*BENCH, "--out", "{tmp}/a-file"], 2, "'{tmp}/a-file' is a file"),
]


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bad-values") / "digits-1"
    create_partition(PartitionRequest("digits", "iid", 1, 0), directory)
    return directory


@pytest.fixture
def refuses(tmp_path, monkeypatch, one_shard):
    """Return a check: ``fedgossip ARGS...``, run in ``tmp_path``, exits ``code`` saying ``says``.

    ``{tmp}`` and ``{data}`` in ARGS and ``says`` stand for ``tmp_path`` and the one-shard partition.
    """
    monkeypatch.chdir(tmp_path)  # defaults (results/, datasets/, bench output) land in tmp_path
    monkeypatch.setenv("COLUMNS", "80")  # as run_cli: rich reads it once, when its consoles are made
    monkeypatch.setattr(LocalTrainer, "run", _no_training)
    # A row that fails after its run directory exists must not leave a guardian waiting for pytest to end.
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)
    (tmp_path / "a-file").write_text("not a directory\n")
    for name, trace in TRACES.items():
        (tmp_path / f"{name}.csv").write_text(trace)
    (tmp_path / "broken-run").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "broken-run" / "run.json").write_text('{"status": ')
    for name, content in USER_MODELS.items():
        (tmp_path / f"{name}.py").write_text(content)
    for name, content in TOML.items():
        path = tmp_path / f"{name}.toml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{data}", str(one_shard))

    def check(args: list[str], code: int, says: str) -> None:
        result = CliRunner().invoke(cli, [fill(arg) for arg in args], catch_exceptions=False)
        output, says = result.output, fill(says)
        assert result.exit_code == code, output
        if code == 2:  # click: a usage line, then "Error: <what was wrong>"
            assert any(line.startswith("Error:") and says in line for line in output.splitlines()), output
        else:
            assert output.count("error:") == 1, output
            assert any("error:" in line and says in line for line in output.splitlines()), output

    return check


def _no_training(*args, **kwargs):
    raise AssertionError("this row reached a training step: its value was accepted")


def _values(rows: list) -> list[tuple]:
    """Return the rows as tuples, whether plain or ``pytest.param``."""
    return [row.values if hasattr(row, "values") else row for row in rows]


def _ids(rows: list) -> list[str]:
    """Name each row by its arguments, shortened."""
    return [
        " ".join(arg if len(arg) < 40 else arg[:37] + "..." for arg in args) for args, *_ in _values(rows)
    ]


@pytest.mark.parametrize(("options", "code", "says"), TRAIN_ROWS, ids=_ids(TRAIN_ROWS))
def test_train_refuses_a_bad_value_before_training(refuses, tmp_path, options, code, says):
    refuses([*TRAIN, *options], code, says)
    # found with the other settings, before the run directory exists: no "failed" run in `fedgossip runs`
    results = tmp_path / "results"
    assert not results.exists() or not any(results.iterdir()), sorted(results.iterdir())


def test_fedavg_on_one_rank_of_the_default_data_says_it_needs_a_client(refuses, tmp_path):
    # in-process, the command runs as `mpiexec -n 1 fedgossip train --algorithm fedavg`
    refuses(
        ["train", "--algorithm", "fedavg", "--rounds", "1", "--out", "{tmp}/results"],
        1,
        "fedavg needs a server and at least one client, 2 nodes, but 1 rank was started with one node "
        "each; start 2 ranks (mpiexec -n 2) or give --nodes 2 or more (several nodes share a rank)",
    )
    assert not (tmp_path / "datasets").exists()


@pytest.mark.parametrize(("args", "code", "says"), OTHER_ROWS, ids=_ids(OTHER_ROWS))
def test_other_commands_refuse_a_bad_value(refuses, args, code, says):
    refuses(args, code, says)


def test_every_train_option_has_a_bad_value_row():
    covered = {option for options, *_ in _values(TRAIN_ROWS) for option in options if option.startswith("--")}
    flags = {flag for param in train.params for flag in param.opts if flag.startswith("--")}
    # the second half of on/off flags, and --vectorize/--one-by-one: either is valid with any run
    # (a TOML row checks the setting's type)
    untested = flags - covered - {"--help", "--sync", "--os-noise", "--vectorize", "--one-by-one"}
    assert not untested, f"add a row with a bad value for {sorted(untested)}"
