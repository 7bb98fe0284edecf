"""A catalogue change is told of SMS over one segment, and the admin preview shows the reminder.

``palaute config check`` and ``palaute catalogue import`` warn of a survey or
reminder SMS that takes two segments; a change through ``/v1/catalogue`` (or
the admin page, which calls the same operations) must say the same, and the
admin page must preview the reminder with its segment count as it does the
survey SMS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connectors.catalogue import CatalogueFollower, seed_change
from connectors.web import catalogue_api as api
from connectors.web.admin_preview import previews
from connectors.web.admin_views import previews_html
from schemas.base import Language
from schemas.config import Settings, load_settings
from tests.unit.test_catalogue_api import TopicInMemory

ROOT = Path(__file__).resolve().parents[2]
PHONE = "phone-service-helsinki"
#: A question that fits the survey SMS of the example organisation but not its reminder.
LONG = "Kuinka tyytyväinen olit tänään puhelinpalveluumme?"
#: A question no SMS of this organisation has room for.
LONGER = LONG + " Kerro myös, saitko asiasi hoidettua yhdellä soitolla."


def _service() -> tuple[api.CatalogueService, Settings]:
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    follower = CatalogueFollower(settings.kafka, "catalogue", settings.catalogue)
    follower._following = True
    topic = TopicInMemory(follower)
    follower.take(
        0, seed_change(settings, datetime(2026, 3, 1, tzinfo=UTC)).model_dump_json().encode()
    )
    topic.records.append(b"seed")
    return api.CatalogueService(follower, topic, settings.policy, settings), settings


def _questions(finnish: str) -> dict[str, str]:
    return {"fi": finnish, "sv": "Fick du hjälp?", "en": "Did you get help?"}


async def test_a_change_whose_sms_takes_two_segments_is_saved_with_a_warning() -> None:
    """The warning names the touchpoint, the language and the segments, as config check does."""
    service, settings = _service()
    short = await api.edit_touchpoint(
        service, PHONE, {"touchpoint": {"questions": _questions("Saitko apua?")}}, by="Aino"
    )
    assert short["warnings"] == []
    long = await api.edit_touchpoint(
        service, PHONE, {"touchpoint": {"questions": _questions(LONG)}}, by="Aino"
    )
    assert long["version"] == short["version"] + 1
    assert settings.touchpoint(PHONE)[0].question(Language.FI) == LONG
    warnings = long["warnings"]
    assert warnings, "a two-segment SMS was saved without a word"
    # Finnish, and Northern Sami, whose SMS is written in Finnish; the survey SMS fits.
    assert warnings == [
        f"touchpoints.{PHONE}: the {code} reminder SMS takes 2 segments (163 of 160 "
        "characters); give the touchpoint or the organisation a shorter sms_name, shorten "
        "the question, or leave out the stop word"
        for code in ("fi", "se")
    ]


async def test_a_created_touchpoint_is_counted_and_a_retired_one_has_nothing_to_warn_of() -> None:
    """Creating is checked like editing; retiring sends nothing, so it warns of nothing."""
    service, _settings = _service()
    created = await api.create_touchpoint(
        service,
        {"id": "library-desk", "touchpoint": {"name": "Kirjasto", "questions": _questions(LONGER)}},
        by="Aino",
    )
    assert any(line.startswith("touchpoints.library-desk: ") for line in created["warnings"])
    retired = await api.retire_touchpoint(service, "library-desk", {}, by="Aino")
    assert retired["warnings"] == []


def test_the_admin_preview_shows_the_reminder_with_its_segments() -> None:
    """A touchpoint with a reminder previews it in each language, counted like the survey SMS."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    touchpoint, _known = settings.touchpoint(PHONE)
    assert touchpoint.reminder_delay is not None
    long = touchpoint.model_copy(update={"questions": _questions(LONG)})
    shown = {preview.language: preview for preview in previews(long, settings)}
    finnish = shown[Language.FI]
    assert finnish.reminder_sms is not None
    assert finnish.reminder_segments is not None
    assert "Vastaa vielä" in finnish.reminder_sms
    assert LONG in finnish.reminder_sms
    assert finnish.segments.segments == 1
    assert finnish.reminder_segments.segments == 2
    page = previews_html("en", list(shown.values()))
    assert page.count('class="message reminder"') == 3
    assert '<p class="reminder-segments" data-segments="2">2 segment(s), ' in page
    # Without a reminder there is none to preview.
    none = touchpoint.model_copy(update={"reminder_delay": None})
    assert all(preview.reminder_sms is None for preview in previews(none, settings))
    assert "message reminder" not in previews_html("en", previews(none, settings))
