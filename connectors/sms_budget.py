"""What every survey SMS of a configuration costs, counted before any is sent.

``palaute config check`` reports each touchpoint whose SMS, in any language,
as the first message or the reminder, would take more than one segment or go
out in UCS-2. The SMS is composed exactly as the dispatcher composes it
(:func:`engine.outbound.compose_sms`), with a link as long as any survey's
(the public base URL and a 16-character survey code) and the organisation of
the touchpoint, so that what passes here is what citizens are billed for.

Where the catalogue names no service (``[defaults]``, for touchpoints it
does not list), the SMS names the service the contact came with, which the
dispatcher shortens if it would not fit; the check counts a name of
:data:`CONTACT_SERVICE_ROOM` characters there, so that some of it always fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.sms_segments import SmsEncoding, SmsSegments, count_segments, non_gsm7_characters
from engine.outbound import asker_for, compose_sms, longest_sms_link, message_language
from schemas.base import Language, SurveyChannel

if TYPE_CHECKING:
    from collections.abc import Mapping

    from schemas.config import Settings, TouchpointConfig

#: Characters of a contact's own service name every SMS must have room for.
CONTACT_SERVICE_ROOM = 12


@dataclass(frozen=True, slots=True)
class SmsCost:
    """One SMS a touchpoint may send, and what it costs."""

    where: str  # "defaults" or "touchpoints.<id>"
    language: Language
    reminder: bool
    body: str
    cost: SmsSegments

    names_both: bool = True

    def describe(self) -> str:
        """Say what is wrong with this SMS, or that nothing is."""
        what = f"the {self.language.value} {'reminder' if self.reminder else 'survey'} SMS"
        if not self.names_both:
            return (
                f"{self.where}: {what} does not name both the organisation and the service; "
                "keep {organisation} and {service} in its texts"
            )
        if self.cost.encoding is SmsEncoding.UCS2:
            culprits = non_gsm7_characters(self.body)
            return (
                f"{self.where}: {what} goes out in UCS-2 (70 characters a segment) because of "
                f"{culprits!r}, and takes {self.cost.segments} segment(s)"
            )
        if self.cost.segments > 1:
            return (
                f"{self.where}: {what} takes {self.cost.segments} segments "
                f"({self.cost.units} of 160 characters); give the touchpoint or the "
                "organisation a shorter sms_name, shorten the question, or leave out the "
                "stop word"
            )
        return f"{self.where}: {what} fits one segment ({self.cost.units} of 160 characters)"


def _sends_sms(touchpoint: TouchpointConfig) -> bool:
    return SurveyChannel.SMS in touchpoint.channel_preference and not touchpoint.sensitive


def survey_sms_costs(settings: Settings) -> list[SmsCost]:
    """Count every SMS the catalogue can send: per touchpoint, language, first and reminder."""
    link = longest_sms_link(str(settings.web.public_base_url))
    entries = {"defaults": settings.defaults} | {
        f"touchpoints.{touchpoint_id}": touchpoint
        for touchpoint_id, touchpoint in settings.touchpoints.items()
    }
    costs = []
    for where, touchpoint in entries.items():
        if not _sends_sms(touchpoint):
            continue
        reminders = (False, True) if touchpoint.reminder_delay is not None else (False,)
        for language in Language:
            used = message_language(touchpoint, language)
            contacts = None if touchpoint.sms_service_in(used) else "x" * CONTACT_SERVICE_ROOM
            asker = asker_for(touchpoint, used, settings.dispatch.organisation, contacts)
            names = (asker.sms_organisation or asker.organisation, asker.sms_service or "")
            for reminder in reminders:
                body = compose_sms(
                    touchpoint,
                    language,
                    link,
                    settings.dispatch.organisation,
                    reminder=reminder,
                    service=contacts,
                )
                named = all(name in body for name in names if name)
                cost = count_segments(body)
                costs.append(SmsCost(where, language, reminder, body, cost, names_both=named))
    return costs


def sms_over_budget(settings: Settings) -> list[str]:
    """Say which SMS would take more than one segment or go out in UCS-2, one line each."""
    return [
        cost.describe()
        for cost in survey_sms_costs(settings)
        if cost.cost.segments > 1 or cost.cost.encoding is SmsEncoding.UCS2 or not cost.names_both
    ]


def catalogue_sms_over_budget(
    settings: Settings, defaults: TouchpointConfig, touchpoints: Mapping[str, TouchpointConfig]
) -> list[str]:
    """Say the same of a catalogue that is not the configuration file's (one to be imported).

    The catalogue in force lives on its topic, so checking the file alone
    would miss what an import brings; the links and the fallback organisation
    are still the deployment's.
    """
    catalogue = {"defaults": defaults, "touchpoints": dict(touchpoints)}
    return sms_over_budget(settings.model_copy(update=catalogue))
