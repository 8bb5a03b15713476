"""A small training job that checkpoints and resumes: PyTorch DDP on the CPU (gloo).

Run one process per rank with the environment `torchrun` sets (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) and a stable checkpoint folder in KIZUNA_CHECKPOINT_DIR (the job owns
its checkpoints; Kizuna gives it the folder). It fits a small network to a fixed synthetic
regression task for `--steps` steps, each rank on its own half of every batch, gradients
averaged by DDP.

- Every `--checkpoint-every` steps, and when SIGTERM arrives (Kizuna's and Slurm's checkpoint
  signal), rank 0 writes model, optimizer and step to `checkpoint.pt` atomically (a temporary
  file, then a rename); all ranks then exit with 143 on SIGTERM, 0 at the end.
- At start, a checkpoint in the folder is loaded and training goes on from its step: the
  result of an interrupted and resumed run equals that of an uninterrupted one.
- At the end rank 0 writes `result.json` (steps, final loss, a digest of the weights).

    RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \\
    KIZUNA_CHECKPOINT_DIR=/tmp/ckpt python examples/ddp_train.py --steps 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

BATCH = 64
FEATURES = 16


def batch(step: int, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of step `step`'s batch: the same numbers whoever asks, whenever."""
    generator = torch.Generator().manual_seed(10_000 + step)
    x = torch.randn(BATCH, FEATURES, generator=generator)
    y = (x[:, :4].sum(dim=1, keepdim=True) - x[:, 4:8].prod(dim=1, keepdim=True)).tanh()
    share = BATCH // world
    return x[rank * share : (rank + 1) * share], y[rank * share : (rank + 1) * share]


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.Tanh(), nn.Linear(32, 1))


def digest(net: nn.Module) -> str:
    weights = torch.cat([p.detach().flatten() for p in net.parameters()])
    return hashlib.sha256(weights.numpy().tobytes()).hexdigest()[:16]


def save(folder: Path, net: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    temporary = folder / "checkpoint.pt.tmp"
    torch.save(
        {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, temporary
    )
    os.replace(temporary, folder / "checkpoint.pt")


def load(folder: Path, net: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    path = folder / "checkpoint.pt"
    if not path.exists():
        return 0
    state: dict[str, Any] = torch.load(path, weights_only=True)
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--checkpoint-every", type=int, default=20)
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=0.0,
        help="Sleep per step, to make a short job last (tests, demos).",
    )
    args = parser.parse_args()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    folder = Path(os.environ["KIZUNA_CHECKPOINT_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    stopping = {"asked": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(asked=True))

    dist.init_process_group("gloo", rank=rank, world_size=world)
    net = model()
    ddp = DistributedDataParallel(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    start = load(folder, net, optimizer)
    print(f"rank {rank}/{world}: starting at step {start}", flush=True)
    loss = torch.tensor(0.0)
    step = start
    while step < args.steps:
        x, y = batch(step, rank, world)
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        optimizer.step()
        step += 1
        time.sleep(args.step_seconds)
        asked = torch.tensor([1 if stopping["asked"] else 0])
        dist.all_reduce(asked)  # every rank stops at the same step
        if rank == 0 and (asked.item() or step % args.checkpoint_every == 0):
            save(folder, net, optimizer, step)
        if asked.item():
            dist.barrier()
            print(f"rank {rank}: checkpointed at step {step}, stopping", flush=True)
            dist.destroy_process_group()
            return 143
    if rank == 0:
        result = {"steps": step, "loss": round(float(loss.detach()), 6), "weights": digest(net)}
        (folder / "result.json").write_text(json.dumps(result))
        print(f"done: {result}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written and the process group destroyed. Exit without the interpreter's
    # teardown: on a busy machine, gloo's threads make it abort there now and then
    # ("terminate called without an active exception", SIGABRT; seen in 2 of 35 runs with
    # both cores busy), which would turn a finished rank into a failed one.
    os._exit(code)
