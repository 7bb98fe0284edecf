"""The aiohttp application of ``palaute web``: routes, limits and the error shape.

Every answer that is not a success is the same JSON shape (see
:mod:`connectors.web.errors`), including aiohttp's own 404 and 405. Bodies
larger than the configured limit are refused with 413 before they are read.
An unexpected exception becomes a 500 that is logged with the method and path
only (never the body, which may hold personal data); the handlers are written
so that no input reaches that branch.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from importlib.metadata import version
from typing import TYPE_CHECKING, Protocol, cast

from aiohttp import web

from connectors.catalogue import CatalogueFollower
from connectors.web import (
    access,
    admin,
    alerts,
    catalogue_routes,
    citizen,
    csrf,
    dashboard,
    health,
    ingress,
    openapi,
    opendata,
)
from connectors.web.access import OperatorTokens
from connectors.web.catalogue_api import CatalogueService
from connectors.web.errors import ApiError, error_response
from connectors.web.limits import forwarded_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from connectors.catalogue import ChangeProducer
    from connectors.web.ingress import ContactProducer
    from connectors.web.open_surveys import SurveyIndex
    from schemas.config import Settings

logger = logging.getLogger(__name__)

#: Sent with every response. No page of this service loads anything from elsewhere.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: For HTML answers only: no scripts, styles or frames from anywhere else.
HTML_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_NOT_A_CODE = re.compile(r"[^a-z0-9]+")


class TopicNamesLike(Protocol):
    """Anything naming the contacts topic, such as schemas.topics.TopicNames."""

    @property
    def contacts(self) -> str:
        """The contacts topic's full name."""
        ...


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPException as error:
        if error.status < 400:  # noqa: PLR2004 - redirects pass through unchanged
            raise
        code = _NOT_A_CODE.sub("_", (error.reason or "error").lower()).strip("_")
        kept = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {}
        return error_response(error.status, code, error.reason, headers=kept)
    except asyncio.CancelledError:
        raise
    except Exception:
        # Method and path only: the body and query may carry personal data.
        logger.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal_error", "unexpected error; it has been logged")


def _body_limit(limit: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def body_limit(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > limit:
            raise ApiError(
                413,
                "payload_too_large",
                f"the body is {length} bytes; the limit is {limit}",
            )
        return await handler(request)

    return body_limit


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_CSP)


def create_web_app(
    settings: Settings,
    *,
    producer: ContactProducer,
    topic_names: TopicNamesLike | None = None,
    stalled_after: timedelta = timedelta(minutes=5),
    survey_index: SurveyIndex | None = None,
) -> web.Application:
    """Build the web application around a started, idempotent Kafka producer.

    The caller owns the producer (starts it before serving, stops it after);
    ``topic_names`` defaults to the contacts topic with ``[streams]
    topic_suffix``; an agent without progress for ``stalled_after`` makes
    /healthz answer 503. ``survey_index`` replaces the one the citizen pages
    otherwise build from the surveys and vault topics (tests hand in their own).
    """
    limit = settings.ingress.max_body_bytes
    app = web.Application(
        middlewares=[_errors, forwarded_for(settings.web.trusted_proxies), _body_limit(limit)],
        # aiohttp's own limit, for bodies without Content-Length; ingress reads
        # within the same limit, so this is a second fence, not the first.
        client_max_size=limit,
    )
    app.on_response_prepare.append(_security_headers)
    contacts = topic_names.contacts if topic_names is not None else settings.topics.contacts
    csrf.setup(app, settings)
    access.setup(app, settings)
    ingress.setup(app, settings, producer=producer, contacts_topic=contacts)
    health.setup(app, stalled_after=stalled_after, catalogue=settings.catalogue)
    follower = CatalogueFollower(settings.kafka, settings.topics.catalogue, settings.catalogue)
    catalogue_routes.setup(
        app,
        CatalogueService(follower, cast("ChangeProducer", producer), settings.policy, settings),
        OperatorTokens(settings.web.ops_token_sha256),
    )
    alerts.setup(app, settings, producer=producer)
    citizen.setup(app, settings, producer=producer, index=survey_index)
    dashboard.setup(app, settings)
    admin.setup(app, settings)
    opendata.setup(app, settings)
    openapi.setup(app, version=version("palaute"))
    return app
