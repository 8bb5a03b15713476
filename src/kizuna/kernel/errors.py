"""Domain errors: what a caller did wrong, in words a person can act on."""


class KizunaError(Exception):
    """Base of every error Kizuna raises on purpose."""


class InvalidRequest(KizunaError):
    """A request that can never succeed as written; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class UnknownName(KizunaError):
    """A name (policy, GPU type...) that is not registered."""


class InconsistentSnapshot(KizunaError):
    """A snapshot that cannot be true: a GPU held twice, an unknown node, a repeated job."""
