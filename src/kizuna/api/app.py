"""`create_app(settings)`: the one place the service is wired (STYLE habit 6, ADR 0018)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI

from kizuna import __version__
from kizuna.api import problems
from kizuna.api.deps import Wiring, forget_old_keys, single_values, system_clock
from kizuna.api.limits import BodyLimit
from kizuna.api.routes import (
    audit,
    history,
    jobs,
    ledger,
    nodes,
    organizations,
    projects,
    tokens,
)
from kizuna.audit.checkpoint import SigningKey
from kizuna.config import Settings
from kizuna.execution.backend import Backend
from kizuna.execution.local import LocalExecutor
from kizuna.live.loop import Loop
from kizuna.live.runner import Runner, leadership_for
from kizuna.services import audit_log
from kizuna.services.audit_log import LogState
from kizuna.store.engine import make_engine, session_factory, writing
from kizuna.store.migrate import upgrade

log = logging.getLogger("kizuna.api")
API = "/api/v1"


def load_key(path: Path, origin: str) -> SigningKey:
    """The checkpoint signing key, made (mode 0600) on first start."""
    if path.exists():
        return SigningKey.from_private_bytes(origin, path.read_bytes())
    key = SigningKey.generate(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(key.to_private_bytes())
    return key


def wire(settings: Settings, clock: Callable[[], datetime] = system_clock) -> Wiring:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    upgrade(engine)
    log_state = LogState(
        settings.audit_origin, load_key(settings.audit_key_file, settings.audit_origin)
    )
    return Wiring(settings, engine, session_factory(engine), log_state, clock)


def _backend(settings: Settings) -> Backend:
    """The local executor, or the Ray backend when `ray_address` is set (ADR 0025)."""
    if not settings.ray_address:
        return LocalExecutor(settings.runs_dir)
    try:
        from kizuna.execution.ray_backend import RayExecutor  # noqa: PLC0415 - optional extra
    except ImportError as error:
        raise RuntimeError(
            f"ray_address is {settings.ray_address!r} but Ray is not installed here: "
            "pip install 'kizuna[ray]'"
        ) from error
    return RayExecutor(settings.ray_address, settings.runs_dir)


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] = system_clock,
    background: bool = True,
    backend: Backend | None = None,
) -> FastAPI:
    """The service. `background`: run the audit checkpointer thread and, unless
    `settings.loop` is off, the scheduling loop with `backend` (default: the local
    executor in `settings.runs_dir`); both off in some tests."""
    wired = wire(settings, clock)
    if background and settings.loop:
        executor = backend or _backend(settings)
        loop = Loop(wired.sessions, executor, settings.home, clock, settings.policy)
        runner = Runner(loop, leadership_for(wired.engine, settings.home), settings.loop_every)
        if isinstance(executor, LocalExecutor) and executor.on_exit is None:
            executor.on_exit = lambda _key: runner.wake()  # B7
        wired.runner = runner

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = threading.Thread(target=_checkpointer, args=(wired, stop), daemon=True)
        if background:
            worker.start()
        if wired.runner is not None:
            wired.runner.start()
        yield
        stop.set()
        if wired.runner is not None:
            wired.runner.stop()
        if background:
            worker.join(timeout=10)
        wired.engine.dispose()

    app = FastAPI(
        title="Kizuna",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
        description="The control plane of a national AI capacity program: organizations, "
        "projects, awards, nodes, jobs, tokens and a verifiable audit log.",
    )
    app.state.kizuna = wired
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    api = APIRouter(prefix=API, responses=problems.RESPONSES, dependencies=[Depends(single_values)])
    for module in (organizations, projects, tokens, nodes, jobs, history, ledger, audit):
        api.include_router(module.router)
    api.add_api_route("/health", health, methods=["GET"], tags=["service"])
    app.include_router(api)
    app.state.methods_by_path = problems.route_table(app)
    problems.document(app)
    return app


def create_app_from_environment() -> FastAPI:
    """The service with `Settings.load()`: the factory uvicorn calls in each of its worker
    processes (`uvicorn --factory kizuna.api.app:create_app_from_environment`)."""
    return create_app(Settings.load())


def health() -> dict[str, str]:
    """Liveness, without signing in."""
    return {"status": "ok", "version": __version__}


def _checkpointer(wired: Wiring, stop: threading.Event) -> None:
    """Sequences audit entries and signs a checkpoint when the log grew (ADR 0017 L-S2/L-S3);
    forgets idempotency keys past their time (I5)."""
    rounds = 0
    while not stop.wait(wired.settings.checkpoint_every):
        try:
            with writing(wired.sessions) as session:
                audit_log.checkpoint(session, wired.log, wired.clock())
            rounds += 1
            if rounds % 600 == 1:
                forget_old_keys(wired)
        except Exception:  # keep going; the next round retries
            log.exception("audit checkpoint failed")
