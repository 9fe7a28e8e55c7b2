"""Health, Prometheus metrics, and the model list (OpenAI `GET /v1/models` shape)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from .common import require_api_key, service_of

router = APIRouter(tags=["system"])
_STARTED = int(time.time())


# Plain `def` handlers: FastAPI runs them in its thread pool, so their store reads (queue depth,
# disk, models) never block the event loop.
@router.get("/health")
def health(request: Request) -> JSONResponse:
    service = service_of(request)
    models = service.models()
    disk = service.disk_status()
    return JSONResponse(
        {
            "status": "low_disk" if disk["low"] else "ok",
            "disk": disk,
            "workers": service.worker_count(),
            "queue_depth": service.queue_depth(),
            "models": models,
            "backends": _backends(models),  # remote engines' servers, reachable or not (docs/remote.md)
        }
    )


def _backends(models: list[dict]) -> list[dict]:
    """One row per remote backend: its URL, whether it answered lately, the model ids it serves."""
    rows: dict[str, dict] = {}
    for row in models:
        details = row.get("details") or {}
        if "backend" in details:
            rows.setdefault(details["backend"], {"url": details["backend"], "reachable": details["reachable"],
                                                 "error": details["error"], "models": []})["models"].append(row["model"])
    return list(rows.values())


@router.get("/metrics")
def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/models", dependencies=[Depends(require_api_key)])
def list_models(request: Request) -> JSONResponse:
    rows = service_of(request).models()
    data = [
        {
            "id": row["model"],
            "object": "model",
            "created": _STARTED,
            "owned_by": "wanimage",
            "engine": row["engine"],
            "available": row["error"] is None,
            "modes": row["modes"],
            # wanimage's extension: engine, preset, checkpoints, on disk, resident, device, memory
            "wanimage": row.get("summary"),
        }
        for row in rows
    ]
    return JSONResponse({"object": "list", "data": data})
