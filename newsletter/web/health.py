"""Liveness, database reachability and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsletter import __version__
from newsletter.errors import DatabaseUnavailable
from newsletter.web.auth import MetricsDep
from newsletter.web.deps import ContextDep

router = APIRouter()


@router.get("/healthz", responses={503: {"description": "the database is unreachable"}})
async def healthz(context: ContextDep) -> JSONResponse:
    try:
        await context.db.ping()
    except DatabaseUnavailable:
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "version": __version__})


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[MetricsDep],
    responses={401: {"description": 'server.metrics is "token": a metrics or admin bearer token'}},
)
async def metrics() -> Response:
    return await _exposition()


async def _exposition() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_metrics_app() -> FastAPI:
    """/metrics alone, without a token: for server.metrics_port, a listener on loopback."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_api_route("/metrics", _exposition, methods=["GET"], response_class=Response)
    return app
