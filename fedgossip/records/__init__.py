"""The run directory ``results/<run>/``: run.json, metrics.h5, summary.json and checkpoints/.

Only rank 0 calls these functions. Every file is written so that a crash at any
moment leaves the last complete version, and every reader checks what it reads.
"""

from fedgossip.records.listing import list_runs
from fedgossip.records.metrics import METRICS_NAME, MetricsWriter, read_metrics
from fedgossip.records.run import (
    CHECKPOINTS,
    RUN_FORMAT_VERSION,
    RUN_NAME,
    STATUSES,
    TERMINAL_STATUSES,
    create_run_dir,
    default_run_name,
    read_run_json,
    update_run_status,
    write_run_json,
)
from fedgossip.records.summary import (
    REQUIRED_KEYS,
    SUMMARY_FORMAT_VERSION,
    SUMMARY_NAME,
    load_summary,
    summarize,
    write_summary,
)

__all__ = [
    "RUN_FORMAT_VERSION",
    "RUN_NAME",
    "CHECKPOINTS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "create_run_dir",
    "default_run_name",
    "write_run_json",
    "update_run_status",
    "read_run_json",
    "METRICS_NAME",
    "MetricsWriter",
    "read_metrics",
    "SUMMARY_NAME",
    "SUMMARY_FORMAT_VERSION",
    "REQUIRED_KEYS",
    "summarize",
    "write_summary",
    "load_summary",
    "list_runs",
]
