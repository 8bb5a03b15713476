"""Settings of the service and of the CLI client: defaults, then a TOML file, then the
environment (KIZUNA_*), as users of other CLIs expect. Built once at the edge and passed down;
no module-level singleton (STYLE habit 6)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from kizuna.kernel.errors import InvalidRequest

DEFAULT_PORT = 8600


def default_home(environ: Mapping[str, str]) -> Path:
    if "KIZUNA_HOME" in environ:
        return Path(environ["KIZUNA_HOME"]).expanduser()
    return Path(environ.get("HOME", "~")).expanduser() / ".kizuna"


@dataclass(frozen=True)
class Settings:
    """The service's settings. `database_url` defaults to a SQLite file in `home`."""

    home: Path
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    audit_origin: str = "kizuna.local/audit"
    max_body_bytes: int = 1_048_576
    checkpoint_every: float = 2.0
    loop: bool = True
    """Run the scheduling loop and the local executor in the service (ADR 0022)."""
    loop_every: float = 0.25
    """Seconds between the loop's ticks when nothing wakes it."""
    policy: str = "fair-share"
    ray_address: str = ""
    """Run jobs on this Ray cluster instead of the local executor (ADR 0025): `ray://head:10001`
    (Ray Client, from anywhere) or `head:6379` on a node of the cluster. Needs the `ray`
    extra (`pip install 'kizuna[ray]'`). Empty: the local executor."""
    """The scheduling policy of the live loop (`kizuna simulate --help` lists them)."""
    url: str = ""
    """Where the CLI finds the service (default: http://host:port)."""
    token: str = ""
    """The CLI's API token."""
    faults: str = ""
    """For the crash harness only (tests/live/crash.py): a comma list of faults to plant,
    `no-idempotency`, `ack-before-commit` (api/deps.py). Empty, as it must be everywhere else."""

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'kizuna.db'}"

    @property
    def service_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def runs_dir(self) -> Path:
        """Where the local executor keeps its runs: logs, process ids, exit codes."""
        return self.home / "runs"

    @property
    def audit_key_file(self) -> Path:
        return self.home / "audit-ed25519.key"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults < `$KIZUNA_HOME/config.toml` < KIZUNA_<FIELD> environment variables."""
        env = os.environ if environ is None else environ
        settings = cls(home=default_home(env))
        if settings.config_file.exists():
            settings = settings.merged(_read_toml(settings.config_file), str(settings.config_file))
        wanted = {f"KIZUNA_{f.name.upper()}": f.name for f in fields(cls) if f.name != "home"}
        from_env = {wanted[k]: v for k, v in env.items() if k in wanted}
        return settings.merged(from_env, "the environment")

    def merged(self, values: Mapping[str, Any], source: str) -> Settings:
        known = {f.name: f for f in fields(self) if f.name != "home"}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidRequest([f"unknown setting {unknown[0]!r} in {source}"])
        changes: dict[str, Any] = {}
        for name, value in values.items():
            kind = type(getattr(self, name))
            try:
                changes[name] = _boolean(value) if kind is bool else kind(value)
            except (TypeError, ValueError):
                raise InvalidRequest(
                    [f"setting {name!r} in {source}: {value!r} is not a {kind.__name__}"]
                ) from None
        return replace(self, **changes)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    words = {"1": True, "true": True, "yes": True, "on": True}
    words.update({"0": False, "false": False, "no": False, "off": False})
    found = words.get(str(value).strip().lower())
    if found is None:
        raise ValueError(value)
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest([f"{path}: {exc}"]) from exc


def save_client(settings: Settings, url: str, token: str) -> Path:
    """Writes the CLI's service URL and token into the config file (mode 0600)."""
    path = settings.config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = _read_toml(path) if path.exists() else {}
    existing.update({"url": url, "token": token})
    text = "".join(f"{k} = {_toml_value(v)}\n" for k, v in sorted(existing.items()))
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
