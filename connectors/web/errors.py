"""Errors the web service answers with, as one JSON shape for every 4xx and 5xx.

Handlers raise :class:`ApiError`; the error middleware of
:mod:`connectors.web.app` writes it out. The body never quotes the input, so a
phone number or an identity code sent by mistake is not echoed back or logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Mapping

    from schemas.decoding import FieldError


class ApiError(Exception):
    """A request refused with a status, a code and (for bad input) every field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: tuple[FieldError, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """Render as ``{"error", "message", "errors": [{"path", "code", "message"}]}``."""
        return error_response(
            self.status, self.code, self.message, errors=self.errors, headers=self.headers
        )


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    errors: tuple[FieldError, ...] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Build the JSON error body every endpoint shares."""
    body = {
        "error": code,
        "message": message,
        "errors": [
            {"path": error.path, "code": error.code, "message": error.message} for error in errors
        ],
    }
    return web.json_response(body, status=status, headers=headers)
