"""What a service refuses, in words a person can act on; the API maps each to a status."""

from __future__ import annotations

from kizuna.kernel.errors import InvalidRequest, KizunaError

__all__ = ["Conflict", "Forbidden", "InvalidRequest", "NotFound", "Unauthenticated"]


class NotFound(KizunaError):
    """No such object, or one the caller may not know exists (the same answer: ADR 0019)."""

    def __init__(self, kind: str, ref: object) -> None:
        self.kind, self.ref = kind, ref
        super().__init__(f"no {kind} {ref!s}")


class Forbidden(KizunaError):
    """The caller may see the object but not do this to it."""


class Conflict(KizunaError):
    """The request clashes with the state of things (a name taken, a job already ended)."""


class Unauthenticated(KizunaError):
    """No credentials, or credentials that are wrong, expired or revoked."""
