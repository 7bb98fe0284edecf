"""A synthetic front office of a Finnish public-service organisation.

About fifteen touchpoints — the national phone service, service points in
several towns, the online service, a chat, a call-back service and one
sensitive touchpoint that is never surveyed — each with its share of the
traffic, its languages (Vaasa serves mostly in Swedish) and its own level of
satisfaction. The phone service is the busiest, as it is in real
organisations, and it is the one the demo degrades: the detector needs a
baseline of about a hundred ratings before it speaks.

Citizens are mostly new, some come back (their repeat contacts show the
frequency cap); a few have no consent, a non-disclosure marking or are minors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

SOURCE = "/demo/front-office"
DEGRADED = "phone-service"


@dataclass(frozen=True)
class DemoTouchpoint:
    """A touchpoint of the demo organisation, with its share of traffic and its usual level."""

    id: str
    name: str
    channel: str
    service: str
    location: str | None
    weight: float
    mean: float  # latent satisfaction on the 1-5 scale
    swedish: float = 0.1  # share of contacts served in Swedish


TOUCHPOINTS: tuple[DemoTouchpoint, ...] = (
    DemoTouchpoint(DEGRADED, "Puhelinpalvelu", "phone", "Neuvonta", None, 0.4, 4.3),
    DemoTouchpoint("phone-service-sv", "Telefontjänst", "phone", "Neuvonta", None, 0.04, 4.3, 1.0),
    DemoTouchpoint("callback-service", "Takaisinsoitto", "phone", "Neuvonta", None, 0.04, 4.1),
    DemoTouchpoint(
        "service-point-helsinki", "Asiointipiste Helsinki", "face-to-face", "Asiointi",
        "Helsinki", 0.07, 4.3,
    ),
    DemoTouchpoint(
        "service-point-espoo", "Asiointipiste Espoo", "face-to-face", "Asiointi", "Espoo", 0.04,
        4.2,
    ),
    DemoTouchpoint(
        "service-point-tampere", "Asiointipiste Tampere", "face-to-face", "Asiointi", "Tampere",
        0.04, 4.1,
    ),
    DemoTouchpoint(
        "service-point-turku", "Asiointipiste Turku", "face-to-face", "Asiointi", "Turku", 0.04,
        4.2, 0.15,
    ),
    DemoTouchpoint(
        "service-point-oulu", "Asiointipiste Oulu", "face-to-face", "Asiointi", "Oulu", 0.03,
        3.8, 0.02,
    ),
    DemoTouchpoint(
        "service-point-vaasa", "Servicepunkt Vasa", "face-to-face", "Asiointi", "Vaasa", 0.03,
        4.4, 0.6,
    ),
    DemoTouchpoint(
        "service-point-jyvaskyla", "Asiointipiste Jyväskylä", "face-to-face", "Asiointi",
        "Jyväskylä", 0.03, 4.0, 0.02,
    ),
    DemoTouchpoint(
        "service-point-kuopio", "Asiointipiste Kuopio", "face-to-face", "Asiointi", "Kuopio",
        0.02, 4.2, 0.02,
    ),
    DemoTouchpoint(
        "service-point-rovaniemi", "Asiointipiste Rovaniemi", "face-to-face", "Asiointi",
        "Rovaniemi", 0.02, 3.9, 0.02,
    ),
    DemoTouchpoint("online-service", "Verkkoasiointi", "digital", "Verkkopalvelut", None, 0.1, 4.0),
    DemoTouchpoint("chat", "Chat", "chat", "Neuvonta", None, 0.06, 3.8),
    DemoTouchpoint(
        "social-work-visit", "Sosiaalityön tapaaminen", "face-to-face", "Sosiaalityö",
        "Helsinki", 0.04, 4.0,
    ),  # sensitive: never surveyed
)  # fmt: skip

BY_ID = {touchpoint.id: touchpoint for touchpoint in TOUCHPOINTS}

# Shares of the synthetic population: consent to SMS and to email, a known
# mobile number, an address besides the number, English speakers.
SMS_CONSENT = 0.92
EMAIL_CONSENT = 0.85
HAS_PHONE = 0.9
ALSO_EMAIL = 0.5
ENGLISH = 0.06
RETURNING = 0.05


@dataclass(frozen=True)
class Contact:
    """One contact-completed record and what the simulated citizen behind it knows."""

    key: bytes
    value: bytes
    touchpoint: DemoTouchpoint
    phone: str | None
    email: str | None


class FrontOffice:
    """Make contact-completed events, one at a time, as the working day brings them."""

    def __init__(self, *, seed: int = 7) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
        self._weights = [touchpoint.weight for touchpoint in TOUCHPOINTS]
        self._citizens: list[dict[str, Any]] = []
        self.count = 0

    def _citizen(self, touchpoint: DemoTouchpoint) -> dict[str, Any]:
        rng = self._rng
        if self._citizens and rng.random() < RETURNING:
            return rng.choice(self._citizens)
        index = len(self._citizens)
        language = "sv" if rng.random() < touchpoint.swedish else "fi"
        if rng.random() < ENGLISH:
            language = "en"
        citizen: dict[str, Any] = {
            "id": f"demo-citizen-{index:06d}",
            "language": language,
            "birth_year": rng.randint(1940, 2004),
            "consent": {"sms": rng.random() < SMS_CONSENT, "email": rng.random() < EMAIL_CONSENT},
        }
        # Finnish mobile numbers in the 040 range, and addresses on a reserved domain.
        if rng.random() < HAS_PHONE:
            citizen["phone"] = f"+35840{1000000 + index:07d}"
        if "phone" not in citizen or rng.random() < ALSO_EMAIL:
            citizen["email"] = f"citizen{index}@example.com"
        if index % 97 == 0:
            citizen["non_disclosure"] = True  # turvakielto
        if index % 61 == 0:
            citizen["birth_year"] = 2012  # a minor
        self._citizens.append(citizen)
        return citizen

    def next(self, now: datetime) -> Contact:
        """Make the next contact, ended a few seconds before ``now``."""
        rng = self._rng
        number = self.count
        self.count += 1
        touchpoint = rng.choices(TOUCHPOINTS, self._weights)[0]
        citizen = self._citizen(touchpoint)
        ended = now - timedelta(seconds=rng.randint(1, 20))
        event = {
            "specversion": "1.0",
            "id": f"demo-evt-{number}",
            "source": SOURCE,
            "type": "fi.palaute.contact.completed.v1",
            "time": now.isoformat(),
            "data": {
                "contact": {
                    "id": f"demo-contact-{number}",
                    "ended_at": ended.isoformat(),
                    "context": {
                        "queue_wait_seconds": rng.randint(0, 900),
                        # From the contact's number, not the generator: the same seed
                        # gives the same contacts as before these were sent.
                        "team": TEAMS[number % len(TEAMS)],
                        "case_type": CASE_TYPES[number // len(TEAMS) % len(CASE_TYPES)],
                    },
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
        return Contact(
            key=str(citizen["id"]).encode(),
            value=orjson.dumps(event),
            touchpoint=touchpoint,
            phone=citizen.get("phone"),
            email=citizen.get("email"),
        )


def broken_records() -> list[tuple[bytes, bytes]]:
    """Give what careless integrations send: each must end on the dead-letter topic."""
    office = FrontOffice(seed=1)
    first, second = (
        office.next(datetime.fromisoformat("2026-01-15T10:00:00+02:00")),
        office.next(datetime.fromisoformat("2026-01-15T10:05:00+02:00")),
    )
    naive = orjson.loads(first.value)
    naive["id"], naive["time"] = "demo-evt-naive", "2026-01-15T10:00:00"
    leaky = orjson.loads(second.value)
    leaky["id"] = "demo-evt-leaky"
    leaky["data"]["contact"]["context"]["case_type"] = "asiakas 131052-308T"
    return [
        (b"broken-1", b'{"specversion": "1.0", "type": '),
        (b"broken-2", orjson.dumps(naive)),
        (b"broken-3", orjson.dumps(leaky)),
    ]


#: The demo's teams and case types; the configuration lists them for the breakdowns.
TEAMS = ("Neuvonta A", "Neuvonta B", "Ajanvaraus")
CASE_TYPES = ("asumistuki", "toimeentulotuki", "terveyspalvelut", "muu asia")


def breakdowns_toml() -> str:
    """Give the demo's ``[breakdowns]`` section: its teams and case types, by name."""
    teams = ", ".join(f'"{team}"' for team in TEAMS)
    kinds = ", ".join(f'"{kind}"' for kind in CASE_TYPES)
    return f"[breakdowns]\nteams = [{teams}]\ncase_types = [{kinds}]\n"


def catalogue_toml(*, send_delay: str = "2s") -> str:
    """Give the demo's touchpoint catalogue in the configuration file's syntax."""
    lines = [f'[defaults]\nsend_delay = "{send_delay}"\n']
    for touchpoint in TOUCHPOINTS:
        lines.append(f'[touchpoints.{touchpoint.id}]\nname = "{touchpoint.name}"')
        lines.append(f'send_delay = "{send_delay}"')
        if touchpoint.channel == "digital":
            lines.append('channel_preference = ["email", "sms"]')
        if touchpoint.id == "social-work-visit":
            lines.append("sensitive = true")
        lines.append("")
    return "\n".join(lines)
