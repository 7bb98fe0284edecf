"""A synthetic front office of a Finnish public-service organisation.

It emits contact-completed events the way a contact centre, service points in
several towns, an online service and a chat would: across touchpoints and
languages, with the citizens that make the policy's rules visible (no
consent, a non-disclosure marking, a minor, repeated contacts) and a few
records that a careless integration would send.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

SOURCE = "/demo/front-office"


@dataclass(frozen=True)
class DemoTouchpoint:
    """A touchpoint of the demo organisation."""

    id: str
    name: str
    channel: str
    service: str
    location: str | None


TOUCHPOINTS: tuple[DemoTouchpoint, ...] = (
    DemoTouchpoint("phone-service", "Puhelinpalvelu", "phone", "Neuvonta", None),
    DemoTouchpoint(
        "service-point-helsinki", "Asiointipiste Helsinki", "face-to-face", "Asiointi", "Helsinki"
    ),
    DemoTouchpoint(
        "service-point-tampere", "Asiointipiste Tampere", "face-to-face", "Asiointi", "Tampere"
    ),
    DemoTouchpoint("service-point-vaasa", "Servicepunkt Vasa", "face-to-face", "Asiointi", "Vaasa"),
    DemoTouchpoint("online-service", "Verkkoasiointi", "digital", "Verkkopalvelut", None),
    DemoTouchpoint("chat", "Chat", "chat", "Neuvonta", None),
    DemoTouchpoint(
        "social-work-visit", "Sosiaalityön tapaaminen", "face-to-face", "Sosiaalityö", "Helsinki"
    ),  # sensitive: never surveyed
)

LANGUAGES = ("fi", "fi", "fi", "fi", "sv", "en")

# Shares of the synthetic population: consent to SMS and to email, a known
# mobile number, and an address besides the number.
SMS_CONSENT = 0.8
EMAIL_CONSENT = 0.7
HAS_PHONE = 0.85
ALSO_EMAIL = 0.5


def _citizen(rng: random.Random, index: int) -> dict[str, Any]:
    language = rng.choice(LANGUAGES)
    citizen: dict[str, Any] = {
        "id": f"demo-citizen-{index:04d}",
        "language": language,
        "birth_year": rng.randint(1940, 2004),
        "consent": {"sms": rng.random() < SMS_CONSENT, "email": rng.random() < EMAIL_CONSENT},
    }
    # Finnish mobile numbers in the 040 range, and addresses on a reserved domain.
    if rng.random() < HAS_PHONE:
        citizen["phone"] = f"+35840{1000000 + index:07d}"
    if "phone" not in citizen or rng.random() < ALSO_EMAIL:
        citizen["email"] = f"citizen{index}@example.com"
    if index % 47 == 0:
        citizen["non_disclosure"] = True  # turvakielto
    if index % 31 == 0:
        citizen["birth_year"] = 2012  # a minor
    return citizen


def contacts(count: int, now: datetime, *, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """Return (key, value) records: mostly valid contacts, a few broken ones."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    citizens = [_citizen(rng, index) for index in range(max(1, count // 3))]
    records: list[tuple[bytes, bytes]] = []
    for number in range(count):
        citizen = rng.choice(citizens)
        touchpoint = rng.choice(TOUCHPOINTS)
        ended = now - timedelta(minutes=rng.randint(1, 120), seconds=number)
        event = {
            "specversion": "1.0",
            "id": f"demo-evt-{number}",
            "source": SOURCE,
            "type": "fi.palaute.contact.completed.v1",
            "time": (ended + timedelta(seconds=5)).isoformat(),
            "data": {
                "contact": {
                    "id": f"demo-contact-{number}",
                    "ended_at": ended.isoformat(),
                    "context": {"queue_wait_seconds": rng.randint(0, 900)},
                },
                "citizen": citizen,
                "touchpoint": {
                    "id": touchpoint.id,
                    "name": touchpoint.name,
                    "channel": touchpoint.channel,
                    "service": touchpoint.service,
                    **({"location": touchpoint.location} if touchpoint.location else {}),
                },
            },
        }
        records.append((str(citizen["id"]).encode(), orjson.dumps(event)))
    # What careless integrations send: each must end on the dead-letter topic.
    records.append((b"broken-1", b'{"specversion": "1.0", "type": '))
    naive = orjson.loads(records[0][1])
    naive["id"], naive["time"] = "demo-evt-naive", "2026-01-15T10:00:00"
    records.append((b"broken-2", orjson.dumps(naive)))
    leaky = orjson.loads(records[1][1])
    leaky["id"] = "demo-evt-leaky"
    leaky["data"]["contact"]["context"]["case_type"] = "asiakas 131052-308T"
    records.append((b"broken-3", orjson.dumps(leaky)))
    return records


def catalogue_toml() -> str:
    """Give the demo's touchpoint catalogue in the configuration file's syntax."""
    return """
[touchpoints.phone-service]
sampling_rate = 0.8

[touchpoints.online-service]
channel_preference = ["email", "sms"]

[touchpoints.chat]
sampling_rate = 0.5

[touchpoints.social-work-visit]
sensitive = true
"""
