"""Awards for a plan: which projects share the cluster, with what shares, quotas and budgets.

A trace knows tenants (a Philly or Helios virtual cluster, a PAI user); an awards spec maps
them to projects, each with fair-share `shares`, a nominal quota and borrowing limit per GPU
type, and optionally GPU-hours (its budget). All projects form one cohort, so idle quota is
lent and reclaimed as in the live service (ADR 0009).

 A1 A tenant belongs to the award that lists it, or else to the award of its own name;
    any other tenant is an error, unless the spec gives `default`, which then applies to
    each such tenant as a project of its own name.
 A2 Without a spec (`AwardsSpec.from_demand`), each tenant is a project; its shares and
    nominal quota are proportional to the GPU-hours its jobs ask for, split by largest
    remainder so the quotas add up to the cluster; borrowing is unlimited.
 A3 `scale_to` multiplies every nominal quota so that each GPU type's quotas add up to the
    cluster's GPUs of that type (largest remainder); borrowing limits scale alike. This is
    how a capacity table of another cluster (Helios) becomes quotas for the planned one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import CohortId, GpuType, ProjectId
from kizuna.kernel.units import HOUR, GpuSeconds
from kizuna.scheduling.model import Project, Quota

K = TypeVar("K", bound=str)
"""Keys of a `split`: project names, or the scheduler's project ids."""


@dataclass(frozen=True, slots=True)
class Award:
    """One project's award."""

    project: str
    tenants: tuple[str, ...] = ()
    """Trace tenants whose jobs belong to this project; empty: the tenant named `project`."""
    shares: float = 1.0
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    """GPU type -> nominal GPUs and borrowing limit (None: unlimited)."""
    gpu_hours: Mapping[str, float] | None = None
    """GPU type -> GPU-hours awarded (its budget); None: not budget-limited."""

    @property
    def members(self) -> tuple[str, ...]:
        return self.tenants or (self.project,)


@dataclass(frozen=True)
class AwardsSpec:
    awards: tuple[Award, ...]
    default: Award | None = None
    """For tenants no award names (A1); its `project` is replaced by the tenant's name."""
    cohort: str = "program"

    def project_of(self, tenants: Iterable[str]) -> dict[str, str]:
        """Tenant -> project name, for every tenant of a trace (A1)."""
        owner, missing = self._owners(tenants)
        if missing and self.default is None:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            raise InvalidRequest(
                [f"tenants of the trace have no award and the spec gives no default: {shown}"]
            )
        return {**owner, **{t: t for t in missing}}

    def projects(self, tenants: Iterable[str]) -> dict[ProjectId, Project]:
        """The scheduler's projects: one per award, plus one per unnamed tenant (A1)."""
        cohort = CohortId(self.cohort)
        awards = list(self.awards)
        if self.default is not None:
            _, missing = self._owners(tenants)
            awards += [replace(self.default, project=t, tenants=(t,)) for t in missing]
        return {ProjectId(a.project): _project(a, cohort) for a in awards}

    def _owners(self, tenants: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """A1: tenant -> project for tenants an award lists or names, and (sorted) the
        tenants of no award."""
        owner = {t: a.project for a in self.awards for t in a.members}
        named = {a.project for a in self.awards}
        unlisted = {t for t in tenants if t not in owner}
        owner.update({t: t for t in unlisted if t in named})
        return owner, sorted(unlisted - named)

    def scale_to(self, gpus: Mapping[GpuType, int]) -> AwardsSpec:
        """Quotas scaled so each type's nominal quotas add up to the cluster's GPUs (A3)."""
        scaled = list(self.awards)
        for gpu_type, total in gpus.items():
            nominal = {
                a.project: a.quotas[gpu_type].nominal for a in scaled if gpu_type in a.quotas
            }
            whole = sum(nominal.values())
            if whole <= 0:
                continue
            parts = split(total, nominal)
            factor = total / whole
            scaled = [
                _with_quota(a, gpu_type, parts[a.project], factor) if gpu_type in a.quotas else a
                for a in scaled
            ]
        return replace(self, awards=tuple(scaled))

    @classmethod
    def from_demand(
        cls, demand: Mapping[str, Mapping[str, float]], gpus: Mapping[GpuType, int]
    ) -> AwardsSpec:
        """A2: `demand` is tenant -> GPU type -> GPU-hours asked for."""
        tenants = sorted(demand)
        awards = []
        split_of = {
            t: split(n, {p: demand[p].get(t, 0.0) for p in tenants}) for t, n in gpus.items()
        }
        for tenant in tenants:
            asked = sum(demand[tenant].values())
            quotas = {str(t): Quota(split_of[t][tenant], None) for t in gpus}
            awards.append(Award(tenant, (tenant,), max(asked, 1e-9), quotas))
        return cls(tuple(awards))

    @classmethod
    def from_capacity(
        cls, capacity: Mapping[str, int], gpu_type: str, tenants: Sequence[str] = ()
    ) -> AwardsSpec:
        """Quotas from a capacity table (Helios: GPUs per virtual cluster): each entry is a
        project with that many nominal GPUs of `gpu_type` and as many shares. With `tenants`
        (a trace's tenants, busiest first) the i-th busiest tenant joins the i-th largest
        entry; tenants beyond the table get a default of no quota and one share."""
        ranked = sorted(capacity.items(), key=lambda kv: (-kv[1], kv[0]))
        awards = []
        for i, (name, gpus) in enumerate(ranked):
            members = (tenants[i],) if i < len(tenants) else ()
            awards.append(Award(name, members or (name,), float(gpus), {gpu_type: Quota(gpus)}))
        default = Award("", shares=1.0, quotas={gpu_type: Quota(0)}) if tenants else None
        return cls(tuple(awards), default)

    @classmethod
    def from_mapping(cls, data: object) -> AwardsSpec:
        """Read a spec from a parsed YAML or JSON document; every problem is listed."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise InvalidRequest(["an awards spec must be a mapping with `awards`"])
        for key in data:
            if key not in {"awards", "default", "cohort"}:
                problems.append(f"{key}: unknown field (known: awards, cohort, default)")
        raw = data.get("awards")
        if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
            raise InvalidRequest(["awards: an awards spec needs a list of awards"])
        awards = [_award(a, f"awards[{i}]", problems, named=True) for i, a in enumerate(raw)]
        default = (
            _award(data["default"], "default", problems, named=False) if "default" in data else None
        )
        found = [a for a in awards if a is not None]
        names = [a.project for a in found]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"awards: the project {name!r} is named twice")
        members = [t for a in found for t in a.members]
        for tenant in sorted({t for t in members if members.count(t) > 1}):
            problems.append(f"awards: tenant {tenant!r} belongs to two awards")
        cohort = data.get("cohort", "program")
        if not isinstance(cohort, str) or not cohort:
            problems.append("cohort: must be a non-empty string")
        if problems:
            raise InvalidRequest(problems)
        return cls(tuple(found), default, str(cohort))


def split(total: int, weights: Mapping[K, float]) -> dict[K, int]:
    """`total` split in proportion to `weights` by largest remainder: the parts add up to it
    (all zero when every weight is)."""
    whole = sum(max(w, 0.0) for w in weights.values())
    if whole <= 0:
        return dict.fromkeys(weights, 0)
    exact = {k: total * max(w, 0.0) / whole for k, w in weights.items()}
    parts = {k: math.floor(x) for k, x in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (parts[k] - exact[k], k))
    for k in by_remainder[: total - sum(parts.values())]:
        parts[k] += 1
    return parts


def _with_quota(award: Award, gpu_type: str, nominal: int, factor: float) -> Award:
    quota = award.quotas[gpu_type]
    limit = quota.borrowing_limit
    scaled = Quota(nominal, None if limit is None else round(limit * factor))
    return replace(award, quotas={**award.quotas, gpu_type: scaled})


def _project(award: Award, cohort: CohortId) -> Project:
    budgets = None
    if award.gpu_hours is not None:
        budgets = {GpuType(t): GpuSeconds(h * HOUR) for t, h in award.gpu_hours.items()}
    return Project(
        ProjectId(award.project),
        cohort,
        {GpuType(t): q for t, q in award.quotas.items()},
        shares=award.shares,
        budgets=budgets,
    )


def _award(data: object, at: str, problems: list[str], *, named: bool) -> Award | None:
    if not isinstance(data, Mapping):
        problems.append(f"{at}: an award must be a mapping")
        return None
    known = {"shares", "quotas", "gpu_hours"} | ({"project", "tenants"} if named else set())
    for key in data:
        if key not in known:
            problems.append(f"{at}.{key}: unknown field (known: {', '.join(sorted(known))})")
    project = data.get("project", "") if named else ""
    if named and (not isinstance(project, str) or not project):
        problems.append(f"{at}.project: required, the project's name")
    tenants = data.get("tenants", [])
    if not isinstance(tenants, Sequence) or isinstance(tenants, str):
        problems.append(f"{at}.tenants: must be a list of trace tenant names")
        tenants = []
    shares = data.get("shares", 1.0)
    if not isinstance(shares, int | float) or isinstance(shares, bool) or not shares > 0:
        problems.append(f"{at}.shares: must be a positive number (got {shares!r})")
    quotas = _quotas(data.get("quotas", {}), f"{at}.quotas", problems)
    hours = data.get("gpu_hours")
    if hours is not None and not _hours_ok(hours):
        problems.append(f"{at}.gpu_hours: must map GPU types to GPU-hours >= 0")
        hours = None
    return Award(
        str(project),
        tuple(str(t) for t in tenants),
        float(shares) if isinstance(shares, int | float) else 1.0,
        quotas,
        {str(k): float(v) for k, v in hours.items()} if hours is not None else None,
    )


def _quotas(data: object, at: str, problems: list[str]) -> dict[str, Quota]:
    if not isinstance(data, Mapping):
        problems.append(f"{at}: must map GPU types to {{nominal, borrowing_limit}}")
        return {}
    out = {}
    for gpu_type, given in data.items():
        where = f"{at}.{gpu_type}"
        plain = isinstance(given, int) and not isinstance(given, bool)
        raw = {"nominal": given} if plain else given
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: a number of GPUs or {{nominal, borrowing_limit}}")
            continue
        for key in raw:
            if key not in {"nominal", "borrowing_limit"}:
                problems.append(f"{where}.{key}: unknown field (known: borrowing_limit, nominal)")
        nominal, limit = raw.get("nominal", 0), raw.get("borrowing_limit")
        if not isinstance(nominal, int) or isinstance(nominal, bool) or nominal < 0:
            problems.append(f"{where}.nominal: must be an integer >= 0 (got {nominal!r})")
            continue
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            problems.append(f"{where}.borrowing_limit: an integer >= 0, or absent for no limit")
            continue
        out[str(gpu_type)] = Quota(nominal, limit)
    return out


def _hours_ok(hours: object) -> bool:
    return isinstance(hours, Mapping) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in hours.values()
    )
