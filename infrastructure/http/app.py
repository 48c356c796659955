"""The ASGI app: GraphQL (HTTP and websockets) at /graphql, the REST adapter under
/api/v1, probes. One lifespan opens and closes every pool of the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from domain.errors import DomainError
from infrastructure.container import Container
from infrastructure.http import demo_login, health, pages
from infrastructure.http.documents import (
    DocumentRefused,
    TrustedDocuments,
    TrustedTransportWS,
    lift,
    names_document,
    query_params,
)
from infrastructure.http.limits import BodyLimit, document_limits
from infrastructure.http.media import GraphQLOverHTTP, given_params
from infrastructure.http.pages.graphiql import offline_graphiql_html
from infrastructure.http.plans import Plans
from infrastructure.logs import request_id_var
from infrastructure.metrics import GraphQLMetrics, HttpMetrics, scrape
from infrastructure.postgres.migrate import current_revision, head_revision
from infrastructure.settings import Settings
from infrastructure.tasks import cancel_and_wait
from resolvers import rest
from resolvers.context import Context, Services
from resolvers.root import build_schema

log = logging.getLogger(__name__)

STATE_CHECK_SECONDS = 1.0
STARTUP_RETRY_SECONDS = 1.0
CORS_METHODS = ["GET", "POST", "OPTIONS"]
CORS_HEADERS = ["Authorization", "Content-Type", "Accept", "X-Request-ID"]


class GraphQLView(GraphQLOverHTTP):
    graphql_transport_ws_handler_class = TrustedTransportWS

    def __init__(self, settings: Settings) -> None:
        schema = build_schema(
            introspection=settings.introspection,
            limits=document_limits(settings),
            observers=[GraphQLMetrics],
        )
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            # The contract's protocol only: the legacy graphql-ws one has no init timeout.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.connection_init_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions,
            # A browser applies no CORS to websockets: Strawberry refuses (403) a handshake
            # whose Origin is another site not listed here; no Origin (not a browser) is fine.
            allowed_origins=settings.cors_origins,
        )
        self.documents = TrustedDocuments.load(settings.trusted_documents)
        self.plans = Plans(schema, settings)
        if settings.plans:
            for text in self.documents.listed:
                self.plans.add(text)

    def parse_json(self, data: str | bytes) -> Any:
        """A request body; a documentId in it is lifted for execute_single (documents.py)."""
        return lift(self.decode_request_json(data))

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        return query_params(given_params(params), self.decode_request_json)

    def decode_request_json(self, data: str | bytes) -> Any:
        """JSON as GraphQLOverHTTP checks it (400s, never a 500), no documentId lifted."""
        return super().parse_json(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """Not for a GET that names a trusted document instead of sending a query."""
        return not names_document(request.query_params) and super().should_render_graphql_ide(
            request
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """A trusted document named by id runs its text; one a caller may not run, or an
        unknown id, is answered with a coded error (documents.py). A prepared one runs
        through its plan (plans.py)."""
        try:
            request_data.query = self.documents.prepare(
                request_data.query, request_data.extensions, context
            )
        except DocumentRefused as exc:
            return exc.result()
        plan = self.plans.get(request_data.query) if request.method == "POST" else None
        if plan is not None and request_data.operation_name in (None, plan.name):
            result = await plan.run(context, request_data.variables)
            if result is not None:  # None: variables the normal path refuses
                return result
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        services: Services = request.app.state.services
        context = Context(
            services=services,
            authorization=request.headers.get("authorization"),
            request_id=request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex,
            request=request,
            response=response,
        )
        if not isinstance(request, WebSocket):  # a websocket's token comes in connection_init
            await context.authenticate()
        return context

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL with its assets served by this app: it works with no internet."""
        return offline_graphiql_html()

    async def on_ws_connect(self, context: Context) -> None:
        """A bad token in connection_init closes the socket (4403); none is fine."""
        await context.authenticate()
        try:
            context.actor_or_none()
        except DomainError as exc:
            raise ConnectionRejectionError({"code": exc.code.value}) from exc


class RequestIds:
    """Gives every request an id (or keeps the caller's X-Request-ID) and echoes it; log
    lines made while it is handled carry it (infrastructure/logs.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode()[:64]
        request_id = given if given.isprintable() and given else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


async def _prepare(readiness: health.Readiness, container: Container) -> None:
    """Until it succeeds: migrations at head, live state loaded, student cache warm."""
    while True:
        try:
            current = await current_revision(container.engine)
            if current != head_revision():
                raise RuntimeError(f"database at migration {current}, head is {head_revision()}")
            readiness.migrations_ok = True
            await container.state.ensure()
            await container.warm_students()
            readiness.state_loaded = True
            readiness.problem = ""
            log.info("ready")
            return
        except Exception as exc:
            readiness.problem = f"{type(exc).__name__}: {exc}"
            log.warning("not ready yet: %s", readiness.problem)
            await asyncio.sleep(STARTUP_RETRY_SECONDS)


async def _watch_state(container: Container) -> None:
    """Redis restarted empty while we run: rebuild before scripts can act again. Each look
    also notes the streams' backlog, so the rebuild can say what the loss took with it."""
    while True:
        await asyncio.sleep(STATE_CHECK_SECONDS)
        try:
            if await container.state.observe():
                await container.state.ensure()
        except Exception as exc:
            log.warning("state check failed: %s", exc)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.readiness = health.Readiness()
        # Waits for Redis, and builds on a cluster client if it runs in cluster mode.
        container = await Container.open(settings)
        app.state.container = container
        await container.start_hub()
        app.state.services = container.services()
        tasks = [asyncio.create_task(_prepare(app.state.readiness, container), name="prepare")]
        tasks.append(asyncio.create_task(_watch_state(container), name="state-watch"))
        try:
            yield
        finally:
            await cancel_and_wait(tasks)
            await container.close()

    view = GraphQLView(settings)
    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/live", health.live),
            Route("/ready", health.ready),
            Route("/health", health.health),
            Route("/metrics", scrape),
            *rest.routes(),
            *pages.routes(settings),
            *demo_login.routes(settings),
        ],
        lifespan=lifespan,
    )
    app.state.graphql_view = view
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(HttpMetrics)  # inside RequestIds: its slow-request lines carry the id
    if settings.cors_origins:
        # Outside the limits, so a refusal (413) still reaches the page as itself.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=["X-Request-ID", "Retry-After"],
            allow_credentials=False,  # tokens travel in Authorization, never in cookies
            max_age=600,
        )
    app.add_middleware(RequestIds)
    return app
