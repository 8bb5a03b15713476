"""A real multi-node Ray cluster on this machine, each node in a network namespace of its own.

Issue 6's network rule: tests send traffic only to loopback or to hosts in namespaces they
create. Ray advertises a machine's interface address even when told 127.0.0.1, so each Ray
node (`ray start --block`, the head with its client server on port 10001) runs in its own
namespace (`ip netns add`), joined by a veth pair to a bridge this helper creates; the
bridge's end in the root namespace has the subnet's `.254`, so the test process (the Kizuna
service, a Ray Client driver) reaches the head at `ray://<subnet>.1:10001`. The namespaces
have no default route: nothing in them can reach anything but the bridge.

Each node gets its own `--temp-dir` (two raylets in one session folder would race for the
same socket names), logical GPUs (`--num-gpus`) and Kizuna's labels (`kizuna.io/node`,
`kizuna.io/gpu-type`, `kizuna.io/rack`, `kizuna.io/nvlink-domain`). The head declares no GPUs
(nothing runs there). Health checks run every second, so a killed node is declared dead
in about 4 s. Needs root and iproute2 (`.ci/run` has both).

Also usable by hand and by bench/ray_launch.py:
`with RayCluster() as cluster: cluster.add_worker("n1", gpus=2); print(cluster.address)`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

RAY = str(Path(sys.executable).with_name("ray"))
CLIENT_PORT = 10001
GCS_PORT = 6379
STARTED = "Ray runtime started"
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "1000",
}


def available() -> str | None:
    """Why namespaced clusters cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (`ip`)"
    if not Path(RAY).exists():
        return "Ray is not installed (pip install 'kizuna[ray]')"
    return None


@dataclass
class RayNode:
    name: str
    namespace: str
    address: str
    temp_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class RayCluster:
    """Start with `start()` (or `with`); `add_worker` joins nodes; `kill` makes one die."""

    root: Path = field(default_factory=lambda: Path("/tmp") / f"kz-ray-{os.getpid()}")
    tag: str = field(default_factory=lambda: f"kz{os.getpid() % 100000}")
    subnet: str = field(default_factory=lambda: f"10.87.{os.getpid() % 250}")
    nodes: dict[str, RayNode] = field(default_factory=dict)
    _next: int = 1

    @property
    def address(self) -> str:
        """What Kizuna's `ray_address` setting takes: the head's Ray Client endpoint."""
        return f"ray://{self.subnet}.1:{CLIENT_PORT}"

    def __enter__(self) -> RayCluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # -- the cluster ------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        bridge = f"{self.tag}br"
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.254/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        head = self._node("head")
        self._launch(
            head,
            "--head",
            "--include-dashboard=false",
            f"--port={GCS_PORT}",
            f"--ray-client-server-port={CLIENT_PORT}",
            "--num-cpus=1",
            "--num-gpus=0",
            "--labels=kizuna.io/role=head",
        )
        self._await(head, timeout)

    def add_worker(
        self,
        name: str,
        gpus: int,
        gpu_type: str = "H100",
        rack: str = "rack-1",
        nvlink_domain: str | None = None,
        cpus: int = 2,
        timeout: float = 90.0,
    ) -> RayNode:
        node = self._node(name)
        labels = {
            "kizuna.io/node": name,
            "kizuna.io/gpu-type": gpu_type,
            "kizuna.io/rack": rack,
            "kizuna.io/nvlink-domain": nvlink_domain or name,
        }
        self._launch(
            node,
            f"--address={self.subnet}.1:{GCS_PORT}",
            f"--num-cpus={cpus}",
            f"--num-gpus={gpus}",
            "--labels=" + ",".join(f"{k}={v}" for k, v in labels.items()),
        )
        self._await(node, timeout)
        return node

    def kill(self, name: str) -> None:
        """The node dies at once: every process in its namespace gets SIGKILL."""
        node = self.nodes[name]
        for pid in _pids(node.namespace):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.process is not None:
            node.process.wait()

    def close(self) -> None:
        for name in reversed(list(self.nodes)):
            self.kill(name)
        for node in self.nodes.values():
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", node.namespace)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", f"{self.tag}br")
        if not os.environ.get("KIZUNA_KEEP_RAY_LOGS"):  # set it to read the nodes' logs after
            shutil.rmtree(self.root, ignore_errors=True)

    # -- one node ---------------------------------------------------------------------------

    def _node(self, name: str) -> RayNode:
        number = self._next
        self._next += 1
        namespace, outside, inside = (f"{self.tag}n{number}", f"{self.tag}v{number}", "eth0")
        address = f"{self.subnet}.{number}"
        _ip("netns", "add", namespace)
        _ip("link", "add", outside, "type", "veth", "peer", "name", f"{self.tag}p{number}")
        _ip("link", "set", f"{self.tag}p{number}", "netns", namespace)
        _ip("link", "set", outside, "master", f"{self.tag}br")
        _ip("link", "set", outside, "up")
        inner = ["netns", "exec", namespace, "ip"]
        _ip(*inner, "link", "set", "lo", "up")
        _ip(*inner, "link", "set", f"{self.tag}p{number}", "name", inside)
        _ip(*inner, "addr", "add", f"{address}/24", "dev", inside)
        _ip(*inner, "link", "set", inside, "up")
        temp = self.root / f"node{number}"
        temp.mkdir(parents=True, exist_ok=True)
        node = RayNode(name, namespace, address, temp, self.root / f"{name}.log")
        self.nodes[name] = node
        return node

    def _launch(self, node: RayNode, *options: str) -> None:
        command = [
            "ip",
            "netns",
            "exec",
            node.namespace,
            RAY,
            "start",
            "--block",
            "--disable-usage-stats",
            f"--node-ip-address={node.address}",
            f"--temp-dir={node.temp_dir}",
            "--object-store-memory=100000000",
            *options,
        ]
        with open(node.log, "ab") as log:
            node.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **ENV},
                start_new_session=True,
            )

    @staticmethod
    def _await(node: RayNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while STARTED not in node.log.read_text(errors="replace"):
            assert node.process is not None
            if node.process.poll() is not None or time.monotonic() > deadline:
                tail = node.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Ray node {node.name} did not start:\n{tail}")
            time.sleep(0.2)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _pids(namespace: str) -> list[int]:
    found = subprocess.run(
        ["ip", "netns", "pids", namespace], check=False, capture_output=True, text=True
    )
    return [int(p) for p in found.stdout.split()]
