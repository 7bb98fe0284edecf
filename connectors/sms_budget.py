"""What every survey SMS of a configuration costs, counted before any is sent.

``palaute config check`` reports each touchpoint whose SMS, in any language,
as the first message or the reminder, would take more than one segment or go
out in UCS-2. The SMS is composed exactly as the dispatcher composes it
(:func:`engine.outbound.compose_sms`), with a link as long as any survey's
(the public base URL and a 16-character survey code) and the organisation of
the touchpoint, so that what passes here is what citizens are billed for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.sms_segments import SmsEncoding, SmsSegments, count_segments, non_gsm7_characters
from engine.outbound import compose_sms, longest_sms_link
from schemas.base import Language, SurveyChannel

if TYPE_CHECKING:
    from schemas.config import Settings, TouchpointConfig


@dataclass(frozen=True, slots=True)
class SmsCost:
    """One SMS a touchpoint may send, and what it costs."""

    where: str  # "defaults" or "touchpoints.<id>"
    language: Language
    reminder: bool
    body: str
    cost: SmsSegments

    def describe(self) -> str:
        """Say what is wrong with this SMS, or that nothing is."""
        what = f"the {self.language.value} {'reminder' if self.reminder else 'survey'} SMS"
        if self.cost.encoding is SmsEncoding.UCS2:
            culprits = non_gsm7_characters(self.body)
            return (
                f"{self.where}: {what} goes out in UCS-2 (70 characters a segment) because of "
                f"{culprits!r}, and takes {self.cost.segments} segment(s)"
            )
        if self.cost.segments > 1:
            return (
                f"{self.where}: {what} takes {self.cost.segments} segments "
                f"({self.cost.units} of 160 characters); shorten the question or the "
                "organisation's name, or leave out the stop word"
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
            for reminder in reminders:
                body = compose_sms(
                    touchpoint,
                    language,
                    link,
                    settings.dispatch.organisation,
                    reminder=reminder,
                )
                costs.append(SmsCost(where, language, reminder, body, count_segments(body)))
    return costs


def sms_over_budget(settings: Settings) -> list[str]:
    """Say which SMS would take more than one segment or go out in UCS-2, one line each."""
    return [
        cost.describe()
        for cost in survey_sms_costs(settings)
        if cost.cost.segments > 1 or cost.cost.encoding is SmsEncoding.UCS2
    ]
