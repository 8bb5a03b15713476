"""A real Ray cluster of a head and worker nodes, each in a network namespace of its own
(cluster.py), shared by this folder's tests; and the whole Kizuna service running its jobs
there (the Ray backend, ADR 0025), its nodes discovered from Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.api.testing import Service, running
from kizuna.config import Settings
from multinode.cluster import RayCluster, available

WORKER_GPUS = 1
"""One logical GPU per worker: a 2-GPU gang has to span two Ray nodes."""


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[RayCluster]:
    """One cluster for the folder (starting one takes 15-20 s here): a head, `n1` and `n2`.
    test_backend_on_ray.py runs first and leaves it as it found it; test_live_on_ray.py
    kills `n2` and adds `n3` in its last test."""
    why = available()
    if why is not None:
        pytest.skip(f"a namespaced Ray cluster cannot run here: {why}")
    from kizuna.execution import ray_backend  # noqa: PLC0415 - Ray is an optional extra

    with RayCluster() as cluster:
        cluster.add_worker("n1", WORKER_GPUS, rack="rack-a")
        cluster.add_worker("n2", WORKER_GPUS, rack="rack-b")
        yield cluster
        ray_backend.disconnect()


@pytest.fixture
def on_ray(ray_cluster: RayCluster, tmp_path: Path) -> Iterator[Service]:
    """The service with its loop, running jobs on `ray_cluster`; SQLite."""
    import ray  # noqa: PLC0415
    from ray._raylet import PlacementGroupID  # noqa: PLC0415
    from ray.util.placement_group import (  # noqa: PLC0415
        PlacementGroup,
        placement_group_table,
        remove_placement_group,
    )

    settings = Settings(home=tmp_path / "home", ray_address=ray_cluster.address, loop_every=0.1)
    with running(settings) as service:
        yield service
    if ray.is_initialized():  # what a failed test left running must not hold the next's GPUs
        for group_id, group in placement_group_table().items():
            if group["state"] != "REMOVED":
                remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))
