"""The FastAPI application: ``create_app(settings)`` builds it; nothing lives at module level."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..compaction import IdleCompactor
from ..execution import Limits, ThreadExecutor
from ..loading import load_bundle
from ..settings import Settings
from ..errors import StoreUnavailable
from ..store import OxigraphStore, RemoteStore, Store, open_configured_store, store_limitations
from ..submissions import Submissions
from ..tokens import WriteTokens, expiring
from ..workers import ProcessExecutor, inline_share_for
from ..writes import Writer
from . import sparql
from .errors import install_error_handlers
from .limits import BodyLimitMiddleware
from .openapi import install_openapi
from .readers import Readers, ReaderSettings
from .services import Executor, Services

__all__ = ["create_app", "warm_up"]

log = logging.getLogger("patrolkg.web")


def _executor_for(store: Store, settings: Settings) -> Executor:
    """Worker processes for a store on disk (hard timeouts), threads for one in memory
    and for a remote store (whose queries wait on the engine, stopped by the client's
    timeout, and which has no snapshots to hand to worker processes)."""
    limits = Limits(timeout=settings.query_timeout, max_rows=settings.max_rows, service_allowlist=settings.service_allowlist)
    if isinstance(store, OxigraphStore) and store.path is not None:
        return ProcessExecutor(
            store, limits, workers=settings.query_workers, threads=settings.worker_threads, inline_budget=settings.inline_budget,
            inline_share=inline_share_for(settings.readers), worker_memory=settings.worker_memory,
        )
    return ThreadExecutor(store, limits, workers=max(4, settings.query_workers))


def _readers_for(executor: Executor, settings: Settings) -> Readers | None:
    """Reader processes for a server whose queries read snapshots of a store on disk
    (they start with the first connection a real server accepts)."""
    if not isinstance(executor, ProcessExecutor) or settings.readers == 0 or executor.inline_budget == 0:
        return None
    reader_settings = ReaderSettings(
        limits=executor.limits,
        base_iri=settings.base_iri,
        vary_origin="*" not in settings.cors_origins,
        inline_budget=executor.inline_budget,
        client_timeout=settings.client_timeout,
        keep_alive=settings.keep_alive,
        log_level=logging.getLogger("patrolkg").getEffectiveLevel(),
        access_log=logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO),
    )
    readers = Readers(executor.publisher, reader_settings, settings.readers)
    executor.on_cheap = readers.share
    return readers


def _compactor_for(store: Store, executor: Executor, settings: Settings) -> IdleCompactor | None:
    """Compaction of a store on disk once its writes pause (``PATROLKG_COMPACT_AFTER``)."""
    if not isinstance(store, OxigraphStore) or store.path is None or settings.compact_after == 0:
        return None
    return IdleCompactor(store, settings.compact_after, on_compacted=executor.notify_write)


def _prepare(store: Store, *, seed: bool) -> None:
    """Say what a remote store does differently, check it, and seed an empty store.

    An engine that does not answer yet does not stop the server from starting: every
    request is answered 503 until it does (and /health tells the load balancer).

    :raises patrolkg.errors.ConfigError: for a remote store configured wrongly.
    """
    for note in store_limitations(store):
        log.warning("remote store: %s", note)
    try:
        if isinstance(store, RemoteStore):
            store.check()
        if seed and not store.graph_names():
            log.info("the store is empty: loading the bundled data")
            load_bundle(store)
    except StoreUnavailable as error:
        log.error("%s; answering 503 until it does (if the store is empty, run `patrolkg load --store-url ...` then)", error)


def _write_tokens(settings: Settings) -> WriteTokens:
    """The write tokens, with a warning for those about to expire.

    :raises patrolkg.errors.ConfigError: the token file is missing or malformed.
    """
    tokens = WriteTokens(settings.write_token, settings.write_tokens_file)
    for entry in expiring(tokens.entries(), timedelta(days=7)):
        log.warning("the write token of %s expires on %s", entry.name, entry.line().split(":", 2)[2])
    return tokens


def warm_up() -> None:
    """Compile the shapes and close the ontology once, before the first request needs them."""
    from ..reasoning import bundled_schema_closure
    from ..validation import compiled_shapes

    bundled_schema_closure()
    compiled_shapes()


class _App(FastAPI):
    """FastAPI, with SPARQL queries by GET answered before the middleware stack
    (:func:`patrolkg.web.sparql.answer_directly`): the service's hot path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and await sparql.answer_directly(self, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, store: Store | None = None, seed: bool = True) -> FastAPI:
    """Build the patrolkg web application.

    :param settings: every limit and switch (see :mod:`patrolkg.settings`).
    :param store: an open store to serve; by default the store the settings name
        (``store_url``, else ``store``) is opened when the app starts and closed when it stops.
    :param seed: load the bundled data at start-up if the store is empty.
    """
    owns_store = store is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store if store is not None else open_configured_store(settings)
        _prepare(opened, seed=seed)
        executor = _executor_for(opened, settings)
        if isinstance(executor, ProcessExecutor):
            executor.start()  # the workers import patrolkg while the server starts
        # The first write needs the compiled shapes and the ontology's closure: made in
        # the background, so that the server answers at once.
        threading.Thread(target=warm_up, name="patrolkg-warm-up", daemon=True).start()
        compactor = _compactor_for(opened, executor, settings)

        def committed() -> None:
            executor.notify_write()
            if compactor is not None:
                compactor.wrote()

        writer = Writer(opened, on_commit=committed)
        app.state.services = Services(
            settings=settings,
            store=opened,
            executor=executor,
            writer=writer,
            submissions=Submissions(opened, writer),
            tokens=_write_tokens(settings),
            readers=_readers_for(executor, settings),
            compactor=compactor,
        )
        try:
            yield
        finally:
            if app.state.services.readers is not None:
                app.state.services.readers.close()
            if compactor is not None:
                compactor.close()
            executor.close()
            if owns_store:
                opened.close()

    app = _App(
        title="patrolkg",
        version=__version__,
        description=(
            "SPARQL endpoint and Linked Data for the knowledge graph of the Russia–China joint bomber patrols. "
            "Every error has one JSON shape (`Error`); a method a path does not take is answered 405 with `Allow`, "
            "and an unexpected failure is a logged 500 in the same shape."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
        allow_headers=["Accept", "Content-Type"],  # no Authorization: writes are not cross-site
        allow_credentials=False,
        expose_headers=["Patrolkg-Truncated", "Content-Location"],
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    from . import routes

    routes.include_all(app)
    return app
