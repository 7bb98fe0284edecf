"""``/v1/catalogue``: the catalogue's HTTP API, for operators' tools and configuration as code.

Authorised with an operator's bearer token (``[web] ops_token_sha256``),
recorded as ``operator token <first 8 hex digits of its SHA-256>``, which
names the token without giving it away; or a signed-in person's session
(reading: any role; changing: admin), recorded with their name and subject. The operations
themselves are in :mod:`connectors.web.catalogue_api`.

The web process follows the catalogue topic from its start in the
background (:meth:`connectors.catalogue.CatalogueFollower.follow`), so its
pages, and these answers, run on the version the workers run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import hdrs, web

from connectors.web import catalogue_api as api
from connectors.web.access import ACCESS, CHALLENGE, OperatorTokens, presented_token
from connectors.web.errors import ApiError
from schemas.accounts import Actor, Role

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from connectors.web.access import Principal

PREFIX = "/v1/catalogue"
SERVICE: Final = web.AppKey("catalogue_service", api.CatalogueService)
TOKENS: Final = web.AppKey("catalogue_tokens", OperatorTokens)
_STOP_SECONDS = 10.0


def setup(
    app: web.Application,
    service: api.CatalogueService,
    tokens: OperatorTokens,
    *,
    follow: bool = True,
) -> None:
    """Add the routes and (unless a test feeds the follower) the task that follows the topic."""
    app[SERVICE] = service
    app[TOKENS] = tokens
    touchpoint = PREFIX + "/touchpoints/{touchpoint_id}"
    app.router.add_get(PREFIX + "/touchpoints", _list)
    app.router.add_post(PREFIX + "/touchpoints", _create)
    app.router.add_get(touchpoint, _get)
    app.router.add_patch(touchpoint, _edit)
    app.router.add_post(touchpoint + "/retire", _retire)
    app.router.add_get(touchpoint + "/history", _history)
    app.router.add_post(touchpoint + "/rollback", _roll_back)

    async def following(_app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(service.follower.follow(stop))
        yield
        stop.set()
        try:
            await asyncio.wait_for(task, _STOP_SECONDS)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    if follow:
        app.cleanup_ctx.append(following)


def _signed_in(request: web.Request) -> Principal | None:
    """Give the signed-in person, when the app has sign-in and the request a session."""
    access = request.app.get(ACCESS)
    principal = None if access is None else access.identify(request)
    return principal if principal is not None and principal.signed_in else None


def _token_holder(request: web.Request) -> str:
    token = presented_token(request.headers.get(hdrs.AUTHORIZATION, ""))
    if token is None or not request.app[TOKENS].authenticate(token):
        raise ApiError(401, "unauthorized", "operator credential required", headers=CHALLENGE)
    return f"operator token {hashlib.sha256(token.encode()).hexdigest()[:8]}"


def operator(request: web.Request) -> str | Actor:
    """Let in who may read the catalogue: a signed-in person, or a program's token (else 401).

    A program's token is named by its digest; a signed-in person by their
    name and subject, the audit trail's record.
    """
    person = _signed_in(request)
    return person.actor if person is not None else _token_holder(request)


def editor(request: web.Request) -> str | Actor:
    """Let in who may change the catalogue: an admin, or a program with the operator token."""
    person = _signed_in(request)
    if person is None:
        return _token_holder(request)
    if not person.may(Role.ADMIN):
        raise ApiError(403, "forbidden", "changing the catalogue needs the admin role")
    return person.actor


async def _body(request: web.Request) -> dict[str, Any]:
    # A form of another site cannot send application/json without a preflight this
    # service never allows, so a browser holding Basic credentials cannot be made
    # to change the catalogue (see connectors.web.csrf for the forms).
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return body


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def _list(request: web.Request) -> web.Response:
    operator(request)
    return _json(api.list_touchpoints(request.app[SERVICE]))


async def _get(request: web.Request) -> web.Response:
    operator(request)
    return _json(api.get_touchpoint(request.app[SERVICE], request.match_info["touchpoint_id"]))


async def _history(request: web.Request) -> web.Response:
    operator(request)
    touchpoint_id = request.match_info["touchpoint_id"]
    return _json(api.touchpoint_history(request.app[SERVICE], touchpoint_id))


async def _create(request: web.Request) -> web.Response:
    by = editor(request)
    body = await _body(request)
    return _json(await api.create_touchpoint(request.app[SERVICE], body, by=by), status=201)


def _change(
    operation: Callable[..., Awaitable[dict[str, Any]]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        by = editor(request)
        body = await _body(request) if request.body_exists else {}
        touchpoint_id = request.match_info["touchpoint_id"]
        return _json(await operation(request.app[SERVICE], touchpoint_id, body, by=by))

    return handler


_edit = _change(api.edit_touchpoint)
_retire = _change(api.retire_touchpoint)
_roll_back = _change(api.roll_back)
