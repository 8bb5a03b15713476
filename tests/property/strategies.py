"""Hypothesis strategies for random but valid scheduling snapshots.

A `Case` is what `run_cycle` takes: a snapshot, a policy and the instant. The snapshots are
consistent the way the control plane builds them (no GPU held twice, running jobs only on
nodes that exist and are not down, unique job ids) and small, so a failure shrinks to a few
nodes and jobs. Every time value is a whole number of seconds: sums of GPU-seconds are then
exact in floating point and a budget check can be compared without tolerance.

Speed: each Hypothesis draw costs tens of microseconds, so most choices are one draw from a
table of combinations (`sampled_from`, which shrinks toward the table's first, simplest row)
and the helpers are plain functions of `draw` rather than nested strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from kizuna.kernel.ids import GpuType, NodeId, ProjectId, ReservationId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    POLICIES,
    Job,
    Node,
    NodeState,
    Policy,
    Project,
    Reservation,
    RunningJob,
    Snapshot,
    make_policy,
)
from kizuna.scheduling.model import HIGH, LOW, NORMAL
from kizuna.scheduling.testing import job, project, projects, running

NOW = Instant(1_000_000.0)
"""The instant every generated cycle runs at; far from 0 so fair-share ages differ."""

HALF_HOUR = 1800.0
GPU_TYPES = ("H100", "A100", "H200")
UNKNOWN_TYPE = "B200"
"""A GPU type no generated cluster has: jobs asking for it are invalid."""

PROJECT_IDS = ("p0", "p1", "p2", "p3")
GHOST = "ghost"
"""A project the snapshot does not know (deleted while its jobs wait): no quota, no budget."""

Draw = st.DrawFn


@dataclass(frozen=True)
class Case:
    """One call of `run_cycle`."""

    snapshot: Snapshot
    policy: Policy
    now: Instant

    def job(self, job_id: str) -> Job:
        """The pending job with this id."""
        return next(j for j in self.snapshot.pending if j.id == job_id)


def _table(*columns: Sequence[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One draw picks a combination; the first row (first of every column) is the simplest."""
    return st.sampled_from(tuple(product(*columns)))


# -- policies ---------------------------------------------------------------------------------

SWITCHES = _table((True, False), (True, False), (True, False))


@st.composite
def policies(draw: Draw, names: Sequence[str] = tuple(POLICIES)) -> Policy:
    """Any registered policy with any combination of backfill, quotas and budgets."""
    backfill, quotas, budgets = draw(SWITCHES)
    name = draw(st.sampled_from(tuple(names)))
    params = draw(st.sampled_from(FAIR_SHARE_VARIANTS)) if name == "fair-share" else {}
    return make_policy(name, backfill=backfill, quotas=quotas, budgets=budgets, **params)


FAIR_SHARE_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"max_age": 1200.0, "recalc_period": 300.0, "w_age": 20_000.0},
    {"max_age": 0.0},
    {"favor_small": True, "recalc_period": 60.0},
)
"""Defaults; age that fills within a few of the tests' 600 s steps and outweighs fair share
(so jobs change tier during a sequence, ADR 0016); age always full; small gangs first."""


# -- profiles: the tables a snapshot draws from --------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What one kind of snapshot is made of. `MIXED` covers everything (several GPU types,
    nodes down, projects without quota, malformed jobs); `BUSY` is one GPU type, every node
    up, one cohort and small jobs, so that borrowing, reclaim and backfill happen often."""

    types: st.SearchStrategy[tuple[str, ...]]
    node_counts: st.SearchStrategy[int]
    nodes: st.SearchStrategy[tuple[Any, ...]]
    """(GPUs, NVLink domain index or None for a domain of its own, state)."""
    projects: st.SearchStrategy[tuple[Any, ...]]
    """(cohort, shares, decayed usage)."""
    quotas: st.SearchStrategy[tuple[int, int | None] | None]
    """(nominal, borrowing limit) for one GPU type, or None: no quota for it."""
    running_counts: st.SearchStrategy[int]
    pending_counts: st.SearchStrategy[int]
    pending_kinds: st.SearchStrategy[str]
    shapes: st.SearchStrategy[tuple[int, int | None, bool]]
    """(GPUs, GPUs per node or None, one NVLink domain)."""


ONE_DOMAIN = (False, False, False, True)
MIXED = Profile(
    types=st.sampled_from((GPU_TYPES[:1], GPU_TYPES[:2], GPU_TYPES[1:2], GPU_TYPES)),
    node_counts=st.sampled_from((1, 2, 3, 4, 2, 3, 4, 5)),
    nodes=_table(
        (8, 8, 8, 4, 4, 2, 1, 3, 6),  # mostly the common 8- and 4-GPU servers
        (0, 1, 2, None),
        (NodeState.UP,) * 6 + (NodeState.DRAINING, NodeState.DOWN),
    ),
    projects=_table(("c0", None, "c1", "c0"), (1.0, 2.0, 4.0), (0.0, 36_000.0, 360_000.0)),
    quotas=st.sampled_from((None, *product((8, 4, 16, 2, 0), (None, 0, 2, 8)))),
    running_counts=st.integers(0, 5),
    pending_counts=st.integers(0, 8),
    pending_kinds=st.sampled_from(("ok",) * 18 + ("unknown type", "broken")),
    shapes=st.sampled_from(
        (
            *((g, None, d) for g in (1, 2, 4, 8, 1, 2, 3, 4, 6, 12, 16) for d in ONE_DOMAIN),
            *((p * n, p, d) for p in (4, 1, 2, 8) for n in (1, 2, 1, 3) for d in ONE_DOMAIN),
        )
    ),
)
BUSY = Profile(
    types=st.just(GPU_TYPES[:1]),
    node_counts=st.integers(2, 5),
    nodes=_table((8, 4, 8, 2), (0, 1, None), (NodeState.UP,)),
    projects=_table(("c0",), (1.0, 2.0, 4.0), (0.0, 36_000.0, 360_000.0)),
    quotas=st.sampled_from(tuple(product((4, 8, 2, 16), (None, 4, 0, 8)))),
    running_counts=st.integers(1, 5),
    pending_counts=st.integers(2, 8),
    pending_kinds=st.just("ok"),
    shapes=st.sampled_from(
        (
            *((g, None, d) for g in (1, 2, 4, 8, 3, 6) for d in ONE_DOMAIN),
            *((p * n, p, d) for p in (4, 2, 8) for n in (1, 2) for d in ONE_DOMAIN),
        )
    ),
)
LINE = Profile(
    types=st.just(GPU_TYPES[:1]),
    node_counts=st.integers(1, 3),
    nodes=_table((8, 8, 4), (0, 1, None), (NodeState.UP,)),
    projects=_table(("c0",), (1.0, 2.0, 4.0), (0.0, 36_000.0, 360_000.0)),
    quotas=st.sampled_from(tuple(product((4, 8, 2, 16), (None, 4, 0, 8)))),
    running_counts=st.integers(1, 5),
    pending_counts=st.integers(8, 24),
    pending_kinds=st.just("ok"),
    shapes=st.sampled_from(
        (
            *((g, None, False) for g in (1, 2, 1, 2, 3, 4, 8)),
            (2, None, True),
            (8, 4, False),
            (4, 4, False),
        )
    ),
)
"""A long line of jobs of few shapes behind a blocked head: many wait alike, late for its
promised start or refused by the reclaimer, and are passed over (`_Cycle._acts_below`)."""
SHAPES = replace(
    LINE,
    node_counts=st.integers(2, 4),
    nodes=_table((8, 4, 8), (0, 1, None), (NodeState.UP,)),
    shapes=st.sampled_from(
        (
            (1, None, False),
            (2, None, True),
            (2, None, False),
            (3, None, True),
            (4, None, True),
            (4, None, False),
            (4, 2, False),
            (8, 4, False),
        )
    ),
)
"""A long line whose projects ask gangs of several shapes at once, of sizes alike: where one
shape is refused (by the `late` view or the reclaimer) another of the same size may still
start or reclaim, so the bounds of `_Cycle._acts_below` must be kept per shape."""
PROFILES = st.sampled_from((MIXED, BUSY))


# -- the cluster --------------------------------------------------------------------------------

RACKS = _table((0, 1), (0, 1), (0, 1))
"""The rack of each of a type's three NVLink domains."""


def type_nodes(draw: Draw, gpu_type: str, profile: Profile) -> list[Node]:
    """One to five nodes of one type in up to three NVLink domains over up to two racks."""
    racks, name = draw(RACKS), gpu_type.lower()
    out = []
    for k in range(draw(profile.node_counts)):
        gpus, domain, state = draw(profile.nodes)
        out.append(
            Node(
                NodeId(f"{name}-{k}"),
                GpuType(gpu_type),
                gpus,
                nvlink_domain="" if domain is None else f"{name}-nvl{domain}",
                rack=f"{name}-rack{racks[domain or 0]}",
                state=state,
            )
        )
    return out


# -- projects -----------------------------------------------------------------------------------

BUDGETS = st.sampled_from((None, *(float(h * 3600) for h in (100, 0, 8, 30, 1000))))
"""Remaining GPU-seconds for one GPU type, or None: that type is missing (0 left)."""
PROJECT_COUNTS = st.integers(1, len(PROJECT_IDS))
THIRDS = st.integers(0, 2)


def project_set(draw: Draw, types: Sequence[str], profile: Profile) -> dict[ProjectId, Project]:
    """One to four projects in zero to two cohorts, some with budgets."""
    out = []
    for pid in PROJECT_IDS[: draw(PROJECT_COUNTS)]:
        cohort, shares, usage = draw(profile.projects)
        quotas = {t: q for t in types if (q := draw(profile.quotas)) is not None}
        budgets = None
        if draw(THIRDS) == 0:
            budgets = {t: b for t in types if (b := draw(BUDGETS)) is not None}
        out.append(project(pid, quotas, cohort, shares, usage, budgets))
    return projects(*out)


# -- running jobs -------------------------------------------------------------------------------

TRAITS = _table(
    (NORMAL, LOW, HIGH),  # priority class
    (True, False),  # preemptible
    (0.0, 30.0, 900.0),  # grace
    (0.0, 600.0, 3600.0),  # min_runtime
    (0.0, 20 * 3600.0, 300 * 3600.0),  # attained GPU-seconds (LAS queues)
)
TRAIT_NAMES = ("priority", "preemptible", "grace", "min_runtime", "attained")
RUN_TIMES = _table(range(1, 9), range(1, 11))
"""Half hours since the start, and half hours left before walltime ends."""
SPANS = st.integers(1, 3)
CUTS = st.integers(0, 63)
STOPPING = st.integers(0, 4)


def traits(draw: Draw) -> dict[str, Any]:
    """The keyword arguments of `testing.job` that do not shape the gang."""
    return dict(zip(TRAIT_NAMES, draw(TRAITS), strict=True))


def running_jobs(
    draw: Draw, nodes: Sequence[Node], owners: Sequence[str], now: Instant, profile: Profile
) -> list[RunningJob]:
    """Up to five running jobs on free GPUs of nodes that are not down: no GPU held twice;
    one in five is already stopping (a preemption was ordered)."""
    free = {n.id: list(range(n.gpus)) for n in nodes if n.state is not NodeState.DOWN}
    out: list[RunningJob] = []
    for _ in range(draw(profile.running_counts)):
        parts = _allocation(draw, nodes, free)
        if parts:
            out.append(_running(draw, f"r{len(out)}", parts, nodes, owners, now))
    return out


def _allocation(
    draw: Draw, nodes: Sequence[Node], free: dict[NodeId, list[int]]
) -> dict[NodeId, list[int]]:
    """Some free GPU indices on one to three nodes of one type, removed from `free`."""
    usable = [n for n in nodes if free.get(n.id)]
    if not usable:
        return {}
    first = draw(st.sampled_from(usable))
    same = [n.id for n in usable if n.gpu_type == first.gpu_type]
    start = same.index(first.id)
    parts: dict[NodeId, list[int]] = {}
    for node in same[start : start + draw(SPANS)]:
        cut, ix = draw(CUTS), free[node]
        take, offset = 1 + cut % len(ix), cut // len(ix) % len(ix)
        chosen = (ix[offset:] + ix[:offset])[:take]
        parts[node] = sorted(chosen)
        free[node] = [g for g in ix if g not in chosen]
    return parts


def _running(
    draw: Draw,
    job_id: str,
    parts: dict[NodeId, list[int]],
    nodes: Sequence[Node],
    owners: Sequence[str],
    now: Instant,
) -> RunningJob:
    gpu_type = next(n.gpu_type for n in nodes if n.id in parts)
    sizes = {len(ix) for ix in parts.values()}
    ran, left = (HALF_HOUR * k for k in draw(RUN_TIMES))
    j = job(
        job_id,
        gpus=sum(len(ix) for ix in parts.values()),
        project=draw(st.sampled_from(tuple(owners))),
        gpu_type=gpu_type,
        walltime=ran + left,
        submit=now - ran - 60.0,
        per_node=sizes.pop() if len(sizes) == 1 and len(parts) > 1 else None,
        **traits(draw),
    )
    stopping = min(now + j.grace, now + left) if draw(STOPPING) == 0 else None
    return running(j, now - ran, parts, stopping)


# -- pending jobs -------------------------------------------------------------------------------

BROKEN = st.sampled_from(
    (
        {"gpus": 0},
        {"gpus": -2},
        {"walltime": 0.0},
        {"walltime": -60.0},
        {"gpus": 6, "per_node": 4},
        {"gpus": 4, "per_node": 0},
        {"grace": -1.0},
        {"min_runtime": -5.0},
    )
)
"""Requests `validate_job` must refuse whatever the cluster."""
WAITS = _table(range(1, 21), range(0, 48, 4))
"""Walltime in half hours, and ten-minute steps since submission."""


def pending_jobs(
    draw: Draw, types: Sequence[str], owners: Sequence[str], now: Instant, profile: Profile
) -> list[Job]:
    """Up to eight pending jobs of both shapes; a few ask for an unknown GPU type or are
    malformed."""
    out = []
    for k in range(draw(profile.pending_counts)):
        kind = draw(profile.pending_kinds)
        gpus, per_node, one_domain = draw(profile.shapes)
        walltime, waited = draw(WAITS)
        fields: dict[str, Any] = {
            "gpus": gpus,
            "per_node": per_node,
            "one_domain": one_domain,
            "project": draw(st.sampled_from(tuple(owners))),
            "gpu_type": draw(st.sampled_from(tuple(types))),
            "walltime": walltime * HALF_HOUR,
            "submit": now - waited * 600.0,
            **traits(draw),
        }
        if kind == "unknown type":
            fields["gpu_type"] = UNKNOWN_TYPE
        elif kind == "broken":
            fields.update(draw(BROKEN))
        out.append(job(f"j{k}", **fields))
    return out


# -- reservations -------------------------------------------------------------------------------

WINDOWS = _table(range(-2, 11), range(1, 11))
"""Half hours from now to the opening, and the window's length in half hours."""
RESERVATION_COUNTS = st.integers(0, 2)


def reservations(
    draw: Draw, nodes: Sequence[Node], owners: Sequence[str], now: Instant
) -> list[Reservation]:
    """Up to two reservations of one to three consecutive nodes, open now or opening soon."""
    out = []
    for k in range(draw(RESERVATION_COUNTS)):
        first, span = draw(st.integers(0, len(nodes) - 1)), draw(SPANS)
        opens, length = draw(WINDOWS)
        start = now + opens * HALF_HOUR
        out.append(
            Reservation(
                ReservationId(f"res{k}"),
                ProjectId(draw(st.sampled_from(tuple(owners)))),
                frozenset(n.id for n in nodes[first : first + span]),
                Instant(start),
                Instant(start + length * HALF_HOUR),
            )
        )
    return out


# -- whole cases --------------------------------------------------------------------------------


@st.composite
def snapshots(
    draw: Draw, now: Instant = NOW, profiles: st.SearchStrategy[Profile] = PROFILES
) -> Snapshot:
    """A consistent snapshot: cluster, projects, running and pending jobs, reservations."""
    profile = draw(profiles)
    nodes = tuple(n for t in draw(profile.types) for n in type_nodes(draw, t, profile))
    types = sorted({n.gpu_type for n in nodes})
    known = project_set(draw, types, profile)
    owners = [*known, GHOST] if draw(st.integers(0, 9)) == 0 else list(known)
    pending = pending_jobs(draw, types, owners, now, profile)
    return Snapshot(
        nodes=nodes,
        running=tuple(_kept_for(draw, running_jobs(draw, nodes, owners, now, profile), pending)),
        pending=tuple(pending),
        projects=known,
        reservations=tuple(reservations(draw, nodes, owners, now)),
    )


def _kept_for(draw: Draw, running: list[RunningJob], pending: Sequence[Job]) -> list[RunningJob]:
    """Some stopping jobs were preempted for a pending job of their GPU type, as an earlier
    cycle's reclaim leaves them: their GPUs are kept for that job (R6)."""
    out = []
    for r in running:
        waiting = [j.id for j in pending if j.gpu_type == r.job.gpu_type]
        kept = r.stopping_at is not None and waiting and draw(st.booleans())
        out.append(replace(r, stopping_for=draw(st.sampled_from(waiting))) if kept else r)
    return out


@st.composite
def cases(
    draw: Draw,
    names: Sequence[str] = tuple(POLICIES),
    profiles: st.SearchStrategy[Profile] = PROFILES,
) -> Case:
    """A snapshot, a policy (any of `names`, any switches) and the instant."""
    return Case(draw(snapshots(profiles=profiles)), draw(policies(names)), NOW)


def with_policy(case: Case, **switches: bool) -> Case:
    """The same case with some policy switches forced."""
    return replace(case, policy=replace(case.policy, **switches))


# -- a reclaim scenario -------------------------------------------------------------------------

OWNER, BORROWER, OTHER, HERO, LENDER = "owner", "borrower", "other", "hero", "lender"
HOLDERS = st.sampled_from(("free", BORROWER, OWNER, OTHER, BORROWER))
"""Who holds one GPU in a reclaim scenario."""
OWNER_QUOTAS = _table((0, 1, 4), (None, 0, 4, None), (None, "c"))
"""Owner's nominal quota beyond what it needs, its borrowing limit, the other's cohort."""
SHORTFALLS = st.sampled_from((0, 1, 2, 4))
"""GPUs the owner's nominal quota falls short of what it needs (when allowed to)."""
LENDINGS = st.sampled_from((0, 8, 32))
"""Nominal quota of an idle project of the cohort: what the cohort has left to lend."""
GRACES = st.sampled_from((0.0, 60.0, 300.0))


@dataclass(frozen=True)
class ReclaimCase:
    """An owner's job within its nominal quota waits while a borrower holds its GPUs."""

    case: Case
    job: Job


@st.composite
def reclaim_cases(draw: Draw, reserved: bool = False, beyond: bool = False) -> ReclaimCase:
    """Every GPU is free or held by the owner, by a project that is not borrowing, or by
    preemptible jobs (past their minimum runtime) of a borrower with nominal quota 0 in the
    owner's cohort (where an idle project may lend more); the owner's pending job fits its
    nominal quota and would fit the cluster if the borrower held nothing. With `reserved`, a
    third project also holds a reservation of some nodes (so the owner may not get everything
    back at once); with `beyond`, the owner's nominal quota is sometimes too small for the
    job, which then may not reclaim."""
    nodes = [replace(n, state=NodeState.UP) for n in type_nodes(draw, "H100", MIXED)]
    holder = {n.id: [draw(HOLDERS) for _ in range(n.gpus)] for n in nodes}
    jobs = _holdings(draw, nodes, holder)
    free = {n.id: sum(h in ("free", BORROWER) for h in holder[n.id]) for n in nodes}
    wanted = _request_within(draw, nodes, free)
    used = {p: sum(r.job.gpus for r in jobs if r.job.project == p) for p in (OWNER, OTHER)}
    spare, limit, other_cohort = draw(OWNER_QUOTAS)
    spare -= draw(SHORTFALLS) if beyond else 0
    nominal = max(0, used[OWNER] + wanted.gpus + spare)
    owners = projects(
        project(OWNER, {"H100": (nominal, limit)}, "c"),
        project(BORROWER, {"H100": (0, None)}, "c"),
        project(OTHER, {"H100": (used[OTHER], 0)}, other_cohort),
        project(LENDER, {"H100": (draw(LENDINGS), 0)}, "c"),
    )
    held = tuple(reservations(draw, nodes, [HERO], NOW)) if reserved else ()
    snapshot = Snapshot(tuple(nodes), tuple(jobs), (wanted,), owners, held)
    backfill, _, budgets = draw(SWITCHES)
    name = draw(st.sampled_from(tuple(POLICIES)))
    policy = make_policy(name, backfill=backfill, quotas=True, budgets=budgets)
    return ReclaimCase(Case(snapshot, policy, NOW), wanted)


def _holdings(
    draw: Draw, nodes: Sequence[Node], holder: dict[NodeId, list[str]]
) -> list[RunningJob]:
    """Running jobs for the held GPUs: one per node and holder, but some borrower jobs span
    two nodes."""
    out: list[RunningJob] = []
    for who in (OWNER, OTHER, BORROWER):
        held = [
            (n.id, ix) for n in nodes if (ix := [g for g, h in enumerate(holder[n.id]) if h == who])
        ]
        k = 0
        while k < len(held):
            span = 2 if who == BORROWER and draw(STOPPING) == 0 else 1
            out.append(_holding(draw, f"r{len(out)}", who, dict(held[k : k + span])))
            k += span
    return out


def _holding(draw: Draw, job_id: str, who: str, parts: dict[NodeId, list[int]]) -> RunningJob:
    ran, left = (HALF_HOUR * k for k in draw(RUN_TIMES))
    kind = traits(draw)
    if who == BORROWER:
        kind.update(preemptible=True, min_runtime=min(kind["min_runtime"], ran))
    j = job(
        job_id,
        gpus=sum(len(ix) for ix in parts.values()),
        project=who,
        walltime=ran + left,
        submit=NOW - ran,
        **kind,
    )
    stopping = None
    if who == BORROWER and draw(STOPPING) == 0:
        stopping = NOW + draw(GRACES)
    return running(j, NOW - ran, parts, stopping)


def _request_within(draw: Draw, nodes: Sequence[Node], free: dict[NodeId, int]) -> Job:
    """A gang for the owner that fits the `free` GPUs (in one domain, if it asks for that)."""
    by_domain: dict[str, list[int]] = {}
    for n in nodes:
        by_domain.setdefault(n.domain, []).append(free[n.id])
    one_domain = draw(st.booleans())
    groups = list(by_domain.values()) if one_domain else [list(free.values())]
    group = draw(st.sampled_from(groups))
    assume(sum(group) > 0)
    per_node = None
    if draw(st.booleans()):
        per_node = draw(st.integers(1, max(group)))
        gpus = per_node * draw(st.integers(1, sum(f >= per_node for f in group)))
    else:
        gpus = draw(st.integers(1, sum(group)))
    walltime, _ = draw(WAITS)
    return job(
        "wanted",
        gpus=gpus,
        project=OWNER,
        per_node=per_node,
        one_domain=one_domain,
        walltime=walltime * HALF_HOUR,
        submit=NOW - 600.0,
    )
