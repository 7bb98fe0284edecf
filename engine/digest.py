"""The weekly digest: last week's figures per touchpoint against the week before, in words.

A team (``[digest.teams.<id>]``) reads the touchpoints it looks after once a
week in its own language: answers, mean and CSAT share of the seven days
that ended at the start of the digest's day, the same of the seven days
before them, and how many alerts started in the week. A touchpoint with
fewer than ``min_answers`` answers in a week shows no figures for it, as on
the dashboard and in the open data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from schemas.base import Scale

WEEK: Final = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class DigestAnswer:
    """The latest rating of one survey, as the digest needs it."""

    touchpoint_id: str
    scale: Scale
    score: int
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class WeekFigures:
    """One touchpoint's week; ``mean`` and ``csat_share`` are None below the minimum."""

    answers: int
    mean: float | None
    csat_share: float | None


@dataclass(frozen=True, slots=True)
class DigestLine:
    """A touchpoint's line: this week, the week before, alerts started this week."""

    touchpoint_id: str
    name: str
    week: WeekFigures
    before: WeekFigures
    alerts: int


def _week(answers: Sequence[DigestAnswer], min_answers: int) -> WeekFigures:
    if not answers:
        return WeekFigures(0, None, None)
    scale = answers[-1].scale
    scores = [answer.score for answer in answers if answer.scale is scale]
    if len(scores) < min_answers:
        return WeekFigures(len(answers), None, None)
    top_two = sum(1 for score in scores if score >= scale.high - 1)
    return WeekFigures(len(answers), sum(scores) / len(scores), top_two / len(scores))


def digest_lines(
    answers: Iterable[DigestAnswer],
    alert_starts: Iterable[tuple[str, datetime]],
    *,
    touchpoints: Mapping[str, str],
    week_end: datetime,
    min_answers: int,
) -> list[DigestLine]:
    """Give one line per touchpoint (id to name, in the given order) for the week ending then."""
    week_start = week_end - WEEK
    before_start = week_start - WEEK
    this: dict[str, list[DigestAnswer]] = {touchpoint: [] for touchpoint in touchpoints}
    last: dict[str, list[DigestAnswer]] = {touchpoint: [] for touchpoint in touchpoints}
    for answer in sorted(answers, key=lambda answer: answer.answered_at):
        if answer.touchpoint_id not in touchpoints:
            continue
        if week_start <= answer.answered_at < week_end:
            this[answer.touchpoint_id].append(answer)
        elif before_start <= answer.answered_at < week_start:
            last[answer.touchpoint_id].append(answer)
    alerts = dict.fromkeys(touchpoints, 0)
    for touchpoint, started in alert_starts:
        if touchpoint in alerts and week_start <= started < week_end:
            alerts[touchpoint] += 1
    return [
        DigestLine(
            touchpoint,
            name,
            _week(this[touchpoint], min_answers),
            _week(last[touchpoint], min_answers),
            alerts[touchpoint],
        )
        for touchpoint, name in touchpoints.items()
    ]


WORDS: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "subject": "Palaute: viikkokooste {first}\N{EN DASH}{last}",
        "greeting": "Hei {team},",
        "intro": "tässä kosketuspisteidenne luvut viikolta {first}\N{EN DASH}{last} "
        "ja edelliseltä viikolta.",
        "line": "{name}: {answers} vastausta, keskiarvo {mean}, tyytyväisiä {csat} "
        "(edellinen viikko: {before_answers} vastausta, keskiarvo {before_mean})",
        "alerts": "  Hälytyksiä viikon aikana: {alerts}",
        "few": "alle {n} vastausta",
        "link": "Kosketuspisteen näkymä: {url}",
        "footer": "Tämä viesti lähetetään viikoittain. Lukuja ei näytetä, jos vastauksia "
        "on alle {n}, jotta yksittäistä vastaajaa ei voi tunnistaa.",
    },
    "sv": {
        "subject": "Palaute: veckosammanfattning {first}\N{EN DASH}{last}",
        "greeting": "Hej {team},",
        "intro": "här är era kontaktpunkters siffror för veckan {first}\N{EN DASH}{last} "
        "och veckan före.",
        "line": "{name}: {answers} svar, medelvärde {mean}, nöjda {csat} "
        "(veckan före: {before_answers} svar, medelvärde {before_mean})",
        "alerts": "  Larm under veckan: {alerts}",
        "few": "färre än {n} svar",
        "link": "Kontaktpunktens vy: {url}",
        "footer": "Detta meddelande skickas varje vecka. Siffror visas inte om det finns "
        "färre än {n} svar, så att ingen enskild svarande kan identifieras.",
    },
    "en": {
        "subject": "Palaute: weekly digest {first}\N{EN DASH}{last}",
        "greeting": "Hello {team},",
        "intro": "here are your touchpoints' figures for the week {first}\N{EN DASH}{last} "
        "and the week before.",
        "line": "{name}: {answers} answers, mean {mean}, satisfied {csat} "
        "(week before: {before_answers} answers, mean {before_mean})",
        "alerts": "  Alerts during the week: {alerts}",
        "few": "fewer than {n} answers",
        "link": "Touchpoint view: {url}",
        "footer": "This message is sent weekly. Figures are not shown below {n} answers, "
        "so that no single respondent can be singled out.",
    },
}


def _number(value: float | None, language: str, fallback: str) -> str:
    if value is None:
        return fallback
    text = f"{value:.2f}"
    return text if language == "en" else text.replace(".", ",")


def _share(value: float | None, language: str, fallback: str) -> str:
    if value is None:
        return fallback
    return f"{value * 100:.0f}%" if language == "en" else f"{value * 100:.0f} %"


def digest_message(
    lines: Sequence[DigestLine],
    *,
    language: str,
    team: str,
    week_end: datetime,
    min_answers: int,
    link: str | None,
) -> tuple[str, str]:
    """Give the subject and the plain-text body in the team's language (fi, sv or en)."""
    words = WORDS[language]
    first = (week_end - WEEK).strftime("%d.%m.")
    last = (week_end - timedelta(days=1)).strftime("%d.%m.%Y")
    few = words["few"].format(n=min_answers)
    body = [words["greeting"].format(team=team), "", words["intro"].format(first=first, last=last)]
    for line in lines:
        body.append("")
        body.append(
            words["line"].format(
                name=line.name,
                answers=line.week.answers,
                mean=_number(line.week.mean, language, few),
                csat=_share(line.week.csat_share, language, few),
                before_answers=line.before.answers,
                before_mean=_number(line.before.mean, language, few),
            )
        )
        if line.alerts:
            body.append(words["alerts"].format(alerts=line.alerts))
        if link is not None:
            body.append(
                "  " + words["link"].format(url=link.format(touchpoint_id=line.touchpoint_id))
            )
    body += ["", words["footer"].format(n=min_answers)]
    return words["subject"].format(first=first, last=last), "\n".join(body) + "\n"
