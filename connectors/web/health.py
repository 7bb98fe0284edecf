"""GET /healthz and GET /metrics: whether this process works, and its figures.

Agents have been seen to stall after days without crashing (faust-streaming
issues 523 and 532); /healthz answers 503 naming every agent whose last
progress is older than the limit, and why in ``reason``, so an orchestrator
restarts the process and its log says what was wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web

from connectors import telemetry
from schemas.catalogue import LiveCatalogue

STALLED_AFTER: Final = web.AppKey("stalled_after", timedelta)
CATALOGUE: Final = web.AppKey("catalogue", LiveCatalogue)


def setup(app: web.Application, *, stalled_after: timedelta, catalogue: LiveCatalogue) -> None:
    """Add /healthz (which names the catalogue version in force) and /metrics."""
    app[STALLED_AFTER] = stalled_after
    app[CATALOGUE] = catalogue
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", _metrics)


async def _health(request: web.Request) -> web.Response:
    stalled_after = request.app[STALLED_AFTER]
    stalled = telemetry.stalled_agents(datetime.now(UTC), stalled_after)
    version = request.app[CATALOGUE].version
    if stalled:
        reason = f"no progress for {stalled_after.total_seconds():.0f} s by: {', '.join(stalled)}"
        return web.json_response(
            {
                "status": "stalled",
                "stalled_agents": stalled,
                "reason": reason,
                "catalogue_version": version,
            },
            status=503,
        )
    return web.json_response({"status": "ok", "catalogue_version": version})


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(body=telemetry.render(), headers={"Content-Type": telemetry.CONTENT_TYPE})
