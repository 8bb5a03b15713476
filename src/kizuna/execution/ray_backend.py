"""The Ray backend: each gang a Ray placement group, each rank an actor running the command
on the node the scheduling core chose (ADR 0025).

Kizuna decides; Ray carries out. A launch becomes one detached placement group named by the
run's key, one bundle per node of the gang ({"GPU": its ranks' GPUs}, the nodes in the order
their first rank comes), each pinned by a label selector to that node (`kizuna.io/node=<name>`,
or `ray.io/node-id` for a node without Kizuna's labels). In bundle j runs a detached actor
`<key>.node-<j>` (ray_rank.py) that starts that node's ranks as process groups with the
environments of `torchrun_env` (MASTER_ADDR: rank 0's node address as Ray knows it,
MASTER_PORT: free there). One actor per node, not per rank: Ray starts a worker process per
actor, the dearest part of a launch. CUDA_VISIBLE_DEVICES is the core's GPU indices, not Ray's: the
core owns the GPUs (ADR 0025).

What the service must remember is on disk under `<root>/<key>/`, as for the local executor:
`launch.json` (written before anything is created on the cluster: a key is never started
twice, B1), `cancel.json` (the kill's deadline), `ended.json` (how the gang ended, written
before its actors and placement group are removed, so `status` answers the same after
that), and each rank's log, copied from its node as it grows (B4). A new service on the
same folder adopts the runs: their actors are found by name (B6). A rank whose node's actor
is gone (its node died, or the service died half-way through starting the gang) is lost: the
others are killed at once and the run is LOST, which the live loop requeues or fails as the
job asks.

Connection: `ray.init(address)`: `ray://head:10001` (Ray Client, from anywhere) or
`head:6379`/`auto` on a node of the cluster. One connection per process (Ray's rule).
B8 (inventory): `nodes()` reads Ray's node table; labels give the GPU type and topology.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal as signals
import threading
import time
from pathlib import Path
from typing import Any

import ray
import ray.cloudpickle
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import get_placement_group, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from kizuna.execution import ray_rank
from kizuna.execution.backend import (
    LOST_RANK,
    SIGNALS,
    Launch,
    NodeFact,
    RunState,
    RunStatus,
    check_gang,
    torchrun_env,
    write_atomically,
)

log = logging.getLogger("kizuna.ray")
NAMESPACE = "kizuna"
NODE_LABEL = "kizuna.io/node"
GPU_TYPE_LABEL = "kizuna.io/gpu-type"
RACK_LABEL = "kizuna.io/rack"
DOMAIN_LABEL = "kizuna.io/nvlink-domain"
CALL = 5.0
"""Seconds to wait for an actor's answer; a node that does not answer in time is asked
again at the next tick (Ray declares it dead within its health-check period)."""
CONNECT_ATTEMPTS = 3
START_PER_NODE = 3.0
"""Seconds each node's actor may take to start, beyond the placement timeout: Ray starts a
worker process per actor (about 0.6 s on two cores, docs/benchmarks.md)."""

# the nodes need Ray only, not Kizuna: the rank actor's module travels by value
ray.cloudpickle.register_pickle_by_value(ray_rank)  # type: ignore[no-untyped-call]
NodeActor: Any = ray.remote(max_restarts=0)(ray_rank.NodeRanks)
_connection_lock = threading.Lock()
_connected_to: str | None = None


def connect(address: str) -> None:
    """Connects this process to the Ray cluster at `address` (once; a different address
    replaces the connection)."""
    global _connected_to  # noqa: PLW0603 - Ray's connection is per process
    with _connection_lock:
        if _connected_to == address and ray.is_initialized():
            return
        for attempt in range(CONNECT_ATTEMPTS):
            if ray.is_initialized():
                ray.shutdown()
            try:
                ray.init(address, namespace=NAMESPACE, logging_level=logging.WARNING)
                break
            except ConnectionError as error:  # e.g. the head's client proxy lost a race
                if attempt + 1 == CONNECT_ATTEMPTS:
                    raise
                log.warning("cannot connect to Ray at %s (%s); trying again", address, error)
                time.sleep(1.0 + attempt)
        _connected_to = address


def disconnect() -> None:
    global _connected_to  # noqa: PLW0603
    with _connection_lock:
        if ray.is_initialized():
            ray.shutdown()
        _connected_to = None


class RayExecutor:
    """Runs gangs on a Ray cluster (the backend protocol, with inventory, B8)."""

    def __init__(self, address: str, root: Path, placement_timeout: float = 30.0) -> None:
        self.address, self.root = address, root
        self.placement_timeout = placement_timeout
        self._lock = threading.RLock()
        self._selectors: dict[str, dict[str, str]] = {}
        """Kizuna node name -> the label selector that pins a bundle to it."""
        self._records: dict[str, dict[str, Any]] = {}
        """launch.json of runs not ended, as read once (it never changes)."""
        self._endings: dict[str, RunStatus] = {}
        """ended.json of ended runs, as read or written once (it never changes)."""
        self._actors: dict[tuple[str, int], Any] = {}
        """Handles of node actors found or made, so a tick asks Ray only for answers."""

    # -- B1-B4 ------------------------------------------------------------------------------

    def submit(self, launch: Launch) -> RunStatus:
        with self._lock:
            connect(self.address)
            folder = self.root / launch.key
            if (folder / "launch.json").exists():  # B1: started before (maybe by another us)
                return self.status(launch.key)
            folder.mkdir(parents=True, exist_ok=True)
            launch.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            started = time.time()
            groups = _groups(launch)
            record = {"ranks": len(launch.ranks), "started": started, "groups": groups}
            write_atomically(folder / "launch.json", json.dumps(record))
            try:
                group = self._place(launch, groups)
            except _Unplaced as error:  # nothing ran: lost, and not started (nothing to pay)
                log.warning("cannot place %s on Ray: %s", launch.key, error)
                return self._finish(launch.key, record, RunState.LOST, [], None)
            try:
                self._start(launch, groups, group)
            except (GetTimeoutError, RayActorError, ValueError) as error:
                log.warning("cannot start %s on Ray: %s", launch.key, error)
                self._finish(launch.key, record, RunState.LOST, [], started)
            return self.status(launch.key)

    def status(self, key: str) -> RunStatus:
        with self._lock:
            ended = self._ended(key)
            if ended is not None:
                return ended
            record = self._record(key)
            started = float(record["started"])
            connect(self.address)
            kill_at, cancelled = self._cancel_state(key)
            codes, ends = self._poll(key, record)
            now = time.time()
            check = check_gang(codes, cancelled, kill_at, now)
            if check.terminate:
                self._signal(key, record, check.running, signals.SIGTERM)  # B5
                assert check.kill_at is not None
                self._write_cancel(key, check.kill_at, cancelled)
            if check.kill:
                self._signal(key, record, check.running, signals.SIGKILL)
            if check.state is RunState.RUNNING:
                return RunStatus(key, check.state, check.exit_codes, started, None)
            ended_at = max((e for e in ends if e is not None), default=now)
            return self._finish(key, record, check.state, list(check.exit_codes), started, ended_at)

    def cancel(self, key: str, grace: float, signal: str = "TERM") -> None:
        with self._lock:
            if self._ended(key) is not None:
                return
            record = self._record(key)
            connect(self.address)
            kill_at, _ = self._cancel_state(key)
            deadline = time.time() + max(0.0, grace)
            if kill_at is None or deadline < kill_at:
                kill_at = deadline
            self._write_cancel(key, kill_at, True)
            every = list(range(int(record["ranks"])))
            self._signal(key, record, every, SIGNALS[signal])
            if grace <= 0:
                self._signal(key, record, every, signals.SIGKILL)

    def logs(self, key: str, rank: int) -> Path:
        with self._lock:
            path = self.root / key / f"rank-{rank}.log"
            if self._ended(key) is None and (self.root / key / "launch.json").exists():
                connect(self.address)
                self._copy_log(key, self._record(key), rank)
            return path

    # -- B8 ---------------------------------------------------------------------------------

    def nodes(self) -> list[NodeFact]:
        """Ray's nodes with GPUs, named by their `kizuna.io/node` label (else `ray-` and the
        first 12 hex digits of the node id); a name seen alive wins over a dead entry."""
        with self._lock:
            connect(self.address)
            found: dict[str, NodeFact] = {}
            for entry in ray.nodes():  # type: ignore[no-untyped-call]
                labels: dict[str, str] = entry.get("Labels") or {}
                gpus = int(float((entry.get("Resources") or {}).get("GPU", 0)))
                node_id = str(entry["NodeID"])
                name = labels.get(NODE_LABEL) or f"ray-{node_id[:12]}"
                alive = bool(entry["Alive"])
                if alive and gpus == 0:
                    continue  # the head, or a CPU-only node: nothing for the core to place
                if alive:
                    self._selectors[name] = (
                        {NODE_LABEL: name} if NODE_LABEL in labels else {"ray.io/node-id": node_id}
                    )
                fact = NodeFact(
                    name,
                    labels.get(GPU_TYPE_LABEL) or labels.get("ray.io/accelerator-type") or "GPU",
                    gpus,
                    labels.get(DOMAIN_LABEL) or name,
                    labels.get(RACK_LABEL) or "ray",
                    alive,
                )
                if name not in found or alive:
                    found[name] = fact
            return sorted(found.values(), key=lambda f: f.name)

    # -- starting ---------------------------------------------------------------------------

    def _place(self, launch: Launch, groups: list[list[int]]) -> Any:
        """The gang's placement group, ready; `_Unplaced` when a node the core chose is not
        alive in Ray, dies while Ray places the bundles, or the placement takes longer than
        `placement_timeout` (the group is removed then)."""
        wanted = {rank.node for rank in launch.ranks}
        alive = {f.name for f in self.nodes() if f.alive}
        if wanted - alive:
            raise _Unplaced(f"no live Ray node {', '.join(sorted(wanted - alive))}")
        nodes = [launch.ranks[indices[0]].node for indices in groups]
        selectors = [self._selectors.get(node, {NODE_LABEL: node}) for node in nodes]
        gpus = [sum(len(launch.ranks[i].gpus) for i in indices) for indices in groups]
        group = placement_group(
            [{"GPU": float(n)} for n in gpus],
            strategy="PACK",
            name=launch.key,
            lifetime="detached",
            bundle_label_selector=selectors,
        )
        ready = group.ready()
        deadline = time.monotonic() + self.placement_timeout
        while not ray.wait([ready], timeout=1.0)[0]:
            gone = wanted - {f.name for f in self.nodes() if f.alive}
            if gone or time.monotonic() > deadline:
                remove_placement_group(group)
                why = f"Ray node {', '.join(sorted(gone))} died" if gone else "timed out"
                raise _Unplaced(f"placing the bundles: {why}")
        return group

    def _start(self, launch: Launch, groups: list[list[int]], group: Any) -> None:
        actors = [
            NodeActor.options(
                name=_actor_name(launch.key, number),
                namespace=NAMESPACE,
                lifetime="detached",
                num_cpus=0,
                num_gpus=sum(len(launch.ranks[i].gpus) for i in indices),
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    group, placement_group_bundle_index=number
                ),
            ).remote(launch.key, indices)
            for number, indices in enumerate(groups)
        ]
        for number, actor in enumerate(actors):
            self._actors[launch.key, number] = actor
        waited = self.placement_timeout + START_PER_NODE * len(actors)
        master = ray.get(actors[0].node_ip.remote(), timeout=waited)  # rank 0 is in group 0
        port = ray.get(actors[0].free_port.remote(), timeout=CALL)
        workdir = str(launch.workdir) if launch.workdir else None
        envs = torchrun_env(launch, master, port)
        starts = [
            actor.start.remote(list(launch.command), {i: envs[i] for i in indices}, workdir)
            for actor, indices in zip(actors, groups, strict=True)
        ]
        ray.get(starts, timeout=waited)

    # -- observing --------------------------------------------------------------------------

    def _poll(
        self, key: str, record: dict[str, Any]
    ) -> tuple[list[int | object | None], list[float | None]]:
        """Each rank's exit code (None: runs, or its node did not answer in time; LOST_RANK: its
        node's actor is gone, or never started it) and the instant it ended."""
        codes: list[int | object | None] = [LOST_RANK] * int(record["ranks"])
        ends: list[float | None] = [None] * int(record["ranks"])
        asked = []
        for number, indices in enumerate(record["groups"]):
            actor = self._actor(key, number)
            asked.append((number, indices, None if actor is None else actor.poll.remote()))
        for number, indices, ref in asked:
            if ref is None:
                continue  # LOST_RANK
            try:
                answers = ray.get(ref, timeout=CALL)
            except RayActorError:
                self._actors.pop((key, number), None)
                continue  # its node died, or it was killed: LOST_RANK
            except GetTimeoutError:
                for index in indices:
                    codes[index] = None  # no answer yet: asked again at the next tick
                continue
            for index in indices:
                started, code, ended = answers[index]
                codes[index] = code if started else LOST_RANK
                ends[index] = ended
        return codes, ends

    def _signal(
        self, key: str, record: dict[str, Any], ranks: list[int], sig: signals.Signals
    ) -> None:
        calls = []
        for number, indices in enumerate(record["groups"]):
            mine = [i for i in indices if i in ranks]
            actor = self._actor(key, number) if mine else None
            if actor is not None:
                calls.append(actor.signal.remote(int(sig), mine))
        for call in calls:
            with contextlib.suppress(RayActorError, GetTimeoutError):
                ray.get(call, timeout=CALL)

    def _copy_log(self, key: str, record: dict[str, Any], rank: int) -> None:
        """Appends what the rank's node has of its log beyond what is here."""
        path = self.root / key / f"rank-{rank}.log"
        number = next((n for n, g in enumerate(record["groups"]) if rank in g), None)
        actor = None if number is None else self._actor(key, number)
        if actor is None:
            return
        with open(path, "ab") as out:
            while True:
                try:
                    chunk: bytes = ray.get(actor.read.remote(rank, out.tell()), timeout=CALL)
                except (RayActorError, GetTimeoutError):
                    return
                out.write(chunk)
                if len(chunk) < ray_rank.READ_LIMIT:
                    return

    # -- ending -----------------------------------------------------------------------------

    def _finish(
        self,
        key: str,
        record: dict[str, Any],
        state: RunState,
        codes: list[int | None],
        started: float | None,
        ended_at: float | None = None,
    ) -> RunStatus:
        """Copies the logs, records how the gang ended, then frees its actors and GPUs."""
        ranks = int(record["ranks"])
        for index in range(ranks):
            self._copy_log(key, record, index)
        codes = codes or [None] * ranks
        ended = RunStatus(key, state, tuple(codes), started, ended_at or time.time())
        body = {
            "state": state.value,
            "codes": codes,
            "started": started,
            "ended": ended.ended_at,
        }
        write_atomically(self.root / key / "ended.json", json.dumps(body))
        self._endings[key] = ended
        self._records.pop(key, None)
        for number in range(len(record["groups"])):
            actor = self._actor(key, number)
            self._actors.pop((key, number), None)
            if actor is not None:  # its ranks first: they are process groups of their own,
                with contextlib.suppress(RayActorError, GetTimeoutError):  # ending the
                    ray.get(actor.kill.remote(), timeout=CALL)  # actor leaves them running
                with contextlib.suppress(RayActorError, ValueError):
                    ray.kill(actor)
        with contextlib.suppress(ValueError):
            remove_placement_group(get_placement_group(key))
        return ended

    def _ended(self, key: str) -> RunStatus | None:
        known = self._endings.get(key)
        if known is not None:
            return known
        try:
            body = json.loads((self.root / key / "ended.json").read_text())
        except FileNotFoundError:
            return None
        known = self._endings[key] = RunStatus(
            key, RunState(body["state"]), tuple(body["codes"]), body["started"], body["ended"]
        )
        self._records.pop(key, None)
        return known

    def _record(self, key: str) -> dict[str, Any]:
        record = self._records.get(key)
        if record is not None:
            return record
        try:
            read: dict[str, Any] = json.loads((self.root / key / "launch.json").read_text())
        except FileNotFoundError:
            raise KeyError(f"no run {key!r} on this executor") from None
        self._records[key] = read
        return read

    def _actor(self, key: str, number: int) -> Any:
        """The actor of the gang's `number`th node, or None when there is none (never
        created, or gone)."""
        found = self._actors.get((key, number))
        if found is None:
            try:
                found = ray.get_actor(_actor_name(key, number), namespace=NAMESPACE)
            except ValueError:
                return None
            self._actors[key, number] = found
        return found

    def _cancel_state(self, key: str) -> tuple[float | None, bool]:
        try:
            body = json.loads((self.root / key / "cancel.json").read_text())
        except FileNotFoundError:
            return None, False
        return float(body["kill_at"]), bool(body.get("cancelled", True))

    def _write_cancel(self, key: str, kill_at: float, cancelled: bool) -> None:
        body = {"kill_at": kill_at, "cancelled": cancelled}
        write_atomically(self.root / key / "cancel.json", json.dumps(body))


class _Unplaced(Exception):
    """The gang's placement group could not be placed: none of its ranks started."""


def _groups(launch: Launch) -> list[list[int]]:
    """The gang's ranks by node, the nodes in the order their first rank comes (rank 0's
    node first)."""
    by_node: dict[str, list[int]] = {}
    for index, rank in enumerate(launch.ranks):
        by_node.setdefault(rank.node, []).append(index)
    return list(by_node.values())


def _actor_name(key: str, number: int) -> str:
    return f"{key}.node-{number}"
