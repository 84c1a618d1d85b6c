"""Run under Open MPI with ULFM: train with ``fg.train`` while named ranks SIGKILL themselves.

``train_and_kill.py OPTIONS_JSON KILLS``: OPTIONS_JSON holds fedgossip.config options (a JSON
list instead: the arguments of ``fedgossip train``, run as the command runs); KILLS is
``RANK@ROUND,...`` (empty: none). A rank named there kills itself as it begins that round (with
``--async``, that interaction), before its local steps, so it never sends that round's packets
and its neighbours learn of the loss in the middle of an exchange. Rank 0 prints the run
directory as one JSON line.

MPI_Finalize hangs in Open MPI 5.0.11 after a lost rank, so every rank ends with os._exit.
"""

import faulthandler
import json
import os
import signal
import sys

from mpi4py import MPI

import fedgossip as fg
from fedgossip.run.context import RunContext

options = json.loads(sys.argv[1])
kills = dict(tuple(map(int, item.split("@"))) for item in sys.argv[2].split(",") if item)
rank = MPI.COMM_WORLD.Get_rank()

if rank in kills:
    begin = RunContext.begin

    def begin_then_die(ctx, step):
        if step == kills[rank]:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does: no handler, no goodbye
        return begin(ctx, step)

    RunContext.begin = begin_then_die  # the start of a round (an interaction with --async)

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
