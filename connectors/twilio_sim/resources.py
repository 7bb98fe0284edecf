"""The JSON shapes of Twilio's 2010-04-01 Messages resource, as the simulator answers them.

The field set of :func:`message_resource` is checked against Twilio's own
OpenAPI description (``api.v2010.account.message``) by the contract test, so
a field added or renamed upstream fails a test instead of drifting silently.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

API_VERSION = "2010-04-01"
MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


def new_sid(prefix: str) -> str:
    """Return a Twilio-style SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime) -> str:
    """Format a date the way the 2010 API does (``Thu, 24 Aug 2023 05:01:45 +0000``)."""
    return format_datetime(moment.replace(microsecond=0))


def messages_uri(account_sid: str) -> str:
    """Return the list URI of an account's messages, relative as Twilio writes it."""
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"


def message_uri(account_sid: str, sid: str) -> str:
    """Return the URI of one message, relative as Twilio writes it."""
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What a create request asked for, after validation."""

    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    num_segments: int
    direction: str = "outbound-api"


def message_resource(message: NewMessage, sid: str, now: datetime) -> dict[str, Any]:
    """Build a freshly queued message exactly as Twilio's create answers it."""
    created = rfc2822(now)
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": created,
        "date_sent": None,
        "date_updated": created,
        "direction": message.direction,
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": str(message.num_segments),
        "price": None,
        "price_unit": None,
        "sid": sid,
        "status": "queued" if message.direction != "inbound" else "received",
        "subresource_uris": {
            "media": f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{sid}/Media.json",
        },
        "to": message.to,
        "uri": message_uri(message.account_sid, sid),
    }


def message_page(
    account_sid: str, messages: list[dict[str, Any]], page_size: int
) -> dict[str, Any]:
    """Build the first page of a message list (the simulator never needs a second)."""
    uri = f"{messages_uri(account_sid)}?PageSize={page_size}&Page=0"
    shown = messages[:page_size]
    return {
        "end": max(len(shown) - 1, 0),
        "first_page_uri": uri,
        "messages": shown,
        "next_page_uri": None,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
    }


@dataclass(frozen=True, slots=True)
class ApiError:
    """One of Twilio's documented REST API errors: HTTP status, code, message."""

    status: int
    code: int
    message: str

    def body(self) -> dict[str, Any]:
        """Return Twilio's error JSON: ``{code, message, more_info, status}``."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }


# The errors the simulator can give, with Twilio's wording. The 21211 wording
# quotes the number, as Twilio's does: clients must never copy it into logs.
AUTHENTICATION = ApiError(401, 20003, "Authentication Error - invalid username")
NOT_FOUND = ApiError(404, 20404, "The requested resource was not found")
TOO_MANY_REQUESTS = ApiError(429, 20429, "Too Many Requests")
INTERNAL = ApiError(500, 20500, "Internal Server Error")
UNAVAILABLE = ApiError(503, 20503, "Service Unavailable")
BODY_REQUIRED = ApiError(400, 21602, "Message body is required.")
FROM_REQUIRED = ApiError(400, 21603, "A 'From' phone number is required.")
TO_REQUIRED = ApiError(400, 21604, "A 'To' phone number is required.")
BODY_TOO_LONG = ApiError(
    400, 21617, "The concatenated message body exceeds the 1600 character limit."
)
UNSUBSCRIBED = ApiError(400, 21610, "Attempt to send to unsubscribed recipient")


def invalid_to(to: str) -> ApiError:
    """Return 21211 for a number that is not a valid phone number."""
    return ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def region_not_permitted(to: str) -> ApiError:
    """Return 21408 for a number in a country the account may not send to."""
    return ApiError(
        400,
        21408,
        "Permission to send an SMS has not been enabled for the region "
        f"indicated by the 'To' number: {to}.",
    )


# Delivery errors carried by status callbacks (30xxx), with Twilio's titles.
DELIVERY_ERRORS: dict[int, str] = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
# Which final status each delivery error ends in: carrier rejections are
# "undelivered", requests Twilio could not even hand over are "failed".
FAILED_DELIVERY_CODES = frozenset({30008})
