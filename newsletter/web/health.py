"""Liveness, database reachability and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsletter import __version__
from newsletter.errors import DatabaseUnavailable
from newsletter.web.deps import ContextDep

router = APIRouter()


@router.get("/healthz", responses={503: {"description": "the database is unreachable"}})
async def healthz(context: ContextDep) -> JSONResponse:
    try:
        await context.db.ping()
    except DatabaseUnavailable:
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "version": __version__})


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
