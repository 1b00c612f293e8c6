"""Where a run's steps execute: worker processes on this machine, or a Dask cluster.

- Every job runs on Dagster's multiprocess executor unless `TRADEGAP_EXECUTOR=dask`, which
  puts every job on Dask.
- `parameter_sweep` runs on Dask by default: a local cluster of `TRADEGAP_DASK_WORKERS`
  worker processes (2) created for the run, or the scheduler at `TRADEGAP_DASK_SCHEDULER`
  (`tcp://host:8786`) when set, whose workers may sit on many machines. Its run config
  (`execution.config.cluster`) can name another cluster per launch: `local` (the arguments
  of `distributed.LocalCluster`) or `existing` (`address`).

The Dask executor is `dagster-dask`'s, imported when a run starts on it: every process
that loads the code location (one per step) is spared importing dask. Dask runs need a
persistent instance (`DAGSTER_HOME`), and workers on other machines need the same code,
the same artifact folder (`TRADEGAP_ARTIFACTS` on a shared file system) and, for the run
history, the shared Postgres instance (`deploy/dagster.yaml`). The Dask executor ignores
concurrency pools: the cluster's worker count is the limit there.
"""

from __future__ import annotations

import os

from dagster import (
    Field,
    Permissive,
    Selector,
    StringSource,
    executor,
    multi_or_in_process_executor,
    multiple_process_executor_requirements,
)

EXECUTOR_ENV = "TRADEGAP_EXECUTOR"
SCHEDULER_ENV = "TRADEGAP_DASK_SCHEDULER"
WORKERS_ENV = "TRADEGAP_DASK_WORKERS"
DEFAULT_WORKERS = 2


@executor(
    name="dask",
    requirements=multiple_process_executor_requirements(),
    config_schema={"cluster": Field(Selector({
        "existing": Field({"address": StringSource}, description="A running scheduler."),
        "local": Field(Permissive(), is_required=False,
                       description="distributed.LocalCluster arguments."),
    }))},
)
def dask_executor(init_context):
    """dagster-dask's executor on a local cluster or a running scheduler."""
    from dagster_dask.executor import DaskExecutor

    ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
    return DaskExecutor(cluster_type, cluster_configuration)


def local_cluster(n_workers: int) -> dict:
    """Executor config of a local Dask cluster: one single-threaded process per worker."""
    return {"cluster": {"local": {"n_workers": n_workers, "threads_per_worker": 1,
                                  "processes": True, "dashboard_address": ":0"}}}


def existing_cluster(address: str) -> dict:
    """Executor config of a running Dask scheduler (`tcp://host:8786`)."""
    return {"cluster": {"existing": {"address": address}}}


def dask_config() -> dict:
    """The scheduler named by `TRADEGAP_DASK_SCHEDULER`, else a local cluster."""
    address = os.environ.get(SCHEDULER_ENV)
    if address:
        return existing_cluster(address)
    return local_cluster(int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS))


def default_executor():
    """The executor of every job without its own: multiprocess, or Dask when asked for."""
    if os.environ.get(EXECUTOR_ENV) == "dask":
        return dask_executor.configured(dask_config(), name="dask_from_environment")
    return multi_or_in_process_executor
