"""The policy registry: a name maps to an ordering's constructor (ADR 0012).

Adding a policy is one module with an `Ordering` and one line in `POLICIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kizuna.kernel.errors import UnknownName
from kizuna.scheduling.policies.base import Ordering, Policy
from kizuna.scheduling.policies.fair_share import FairShare
from kizuna.scheduling.policies.fifo import Fifo
from kizuna.scheduling.policies.las import Las
from kizuna.scheduling.policies.sjf import Sjf

POLICIES: dict[str, Callable[..., Ordering]] = {
    "fifo": Fifo,
    "fair-share": FairShare,
    "las": Las,
    "sjf": Sjf,
}


def make_policy(
    name: str, *, backfill: bool = True, quotas: bool = True, budgets: bool = True, **params: Any
) -> Policy:
    """The policy registered as `name`, with its switches and its own parameters."""
    try:
        make = POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise UnknownName(f"unknown policy {name!r}; known policies: {known}") from None
    return Policy(name, make(**params), backfill=backfill, quotas=quotas, budgets=budgets)


__all__ = ["POLICIES", "Ordering", "Policy", "make_policy"]
