"""Ray executor: every shard is a Ray task; finished shards are saved by the driver as they come back.

``bench run --executor ray`` starts a local Ray instance, ``--address auto`` joins a running cluster (started with
``ray start`` or Ray's cluster launcher, e.g. on SLURM nodes), ``--address ray://host:port`` uses Ray Client.
Model and dataset go to the object store once per run. A worker that dies mid-shard is retried by Ray
(``max_retries``); a killed driver loses only unfinished shards, since every finished batch is already on disk.
With ``--device cuda`` every task asks Ray for ``gpus_per_task`` GPUs (a fraction lets several shards share one)
and runs on the GPU Ray gives it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from bench.exceptions import DeviceUnavailableError, ExecutorUnavailableError
from bench.executors.base import EXECUTORS, BatchCallback, Executor, ShardJob, run_batches

RayUnavailableError = ExecutorUnavailableError


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            "--executor ray needs Ray: pip install 'ribench[ray]' (or use --executor local)"
        ) from exc
    return ray


def _run_shard(job: ShardJob, model: Any, data: Any, threads: int) -> list[tuple[int, Any]]:
    import torch

    torch.set_num_threads(threads)
    # Ray shows a task only the GPUs it was given, as cuda:0...; the driver's cuda:N may not exist here
    device = "cuda" if job.ctx.device.startswith("cuda") else job.ctx.device
    ctx = replace(job.ctx, dataset=data, device=device)
    return list(run_batches(replace(job, model=model.to(device), data=data, ctx=ctx)))


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_task: int = 1,
        max_retries: int = 3,
        gpus_per_task: float = 0.0,
    ) -> None:
        ray = _import_ray()
        self.ray, self.cpus_per_task, self.max_retries = ray, cpus_per_task, max_retries
        self._started_here = not ray.is_initialized()
        if self._started_here:
            kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus or os.cpu_count()}
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        if gpus_per_task and not ray.cluster_resources().get("GPU"):
            self.close()
            raise DeviceUnavailableError(
                "--executor ray --device cuda: the Ray cluster has no GPUs "
                "(start its workers with `ray start --num-gpus N`)"
            )
        self._remote = ray.remote(_run_shard).options(
            num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries
        )

    def run(self, jobs: list[ShardJob], on_batch: BatchCallback) -> None:
        refs: dict[int, Any] = {}  # id(object) -> object ref: each model and dataset is put once

        def put_once(obj: Any) -> Any:
            if id(obj) not in refs:
                refs[id(obj)] = self.ray.put(obj)
            return refs[id(obj)]

        pending = {}
        for job in jobs:
            payload = put_once(job.model), put_once(job.data)
            pending[self._remote.remote(job.without_payload(), *payload, self.cpus_per_task)] = job
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                for start, part in self.ray.get(ref):
                    on_batch(job, start, part)

    def close(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()


EXECUTORS.add("ray", RayExecutor, description="Ray tasks, one per shard (pip install 'ribench[ray]')")
