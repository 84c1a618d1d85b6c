"""Run under Open MPI with ULFM: train with ``fg.train`` while named ranks SIGKILL themselves.

``train_and_kill.py OPTIONS_JSON KILLS``: OPTIONS_JSON holds fedgossip.config options (a JSON
list instead: the arguments of ``fedgossip train``, run as the command runs); KILLS is
``RANK@ROUND,...`` (empty: none). A rank named there kills itself when its nodes are about to
start that round's local steps, so it never sends that round's packets and its neighbours learn
of the loss in the middle of the exchange. Rank 0 prints the run directory as one JSON line.

MPI_Finalize hangs in Open MPI 5.0.11 after a lost rank, so every rank ends with os._exit.
"""

import faulthandler
import json
import os
import signal
import sys

from mpi4py import MPI

import fedgossip as fg
from fedgossip.run.node import Node

options = json.loads(sys.argv[1])
kills = dict(tuple(map(int, item.split("@"))) for item in sys.argv[2].split(",") if item)
rank = MPI.COMM_WORLD.Get_rank()

if rank in kills:
    steps_in = Node.steps_in

    def steps_then_die(node, round_index):
        if round_index == kills[rank]:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does: no handler, no goodbye
        return steps_in(node, round_index)

    Node.steps_in = steps_then_die

if os.environ.get("DUMP_AFTER"):  # a hang shows every rank's stacks, then ends the rank
    faulthandler.dump_traceback_later(float(os.environ["DUMP_AFTER"]), exit=True)
if isinstance(options, list):  # the command line's way: it prints the summary and ends the process
    from fedgossip.cli import main

    sys.argv = ["fedgossip", "train", *options]
    main()
run = fg.train(fg.config(**options))
if run is not None:
    print(json.dumps({"run_dir": str(run.path)}), flush=True)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
