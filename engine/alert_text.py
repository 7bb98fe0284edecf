"""An alert told in plain words, in Finnish, Swedish or English.

The dashboard, the alert email and the webhook all show an alert through
:func:`explain`, so a person reads the same sentence wherever it reaches
them: what changed, by how much, over how many answers, how unlikely it is
to be chance, and when, in the policy's time zone, naming the touchpoint.

Figures are rounded to what a reader can compare: two decimals for means,
whole percentages for shares, and more digits only where rounding would make
two different figures look equal ("upper bound 65 % against a target of
65 %" becomes 64,6 % against 65 %). Finnish case endings after a numeral
follow how the numeral is read ("4,24:stä 3,09:ään").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from schemas.alerts import AlertKind, AlertState, Severity

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from schemas.alerts import ScoreDropAlert
    from schemas.config import TouchpointConfig

LANGUAGES: Final = ("fi", "sv", "en")

_KIND: Final[dict[str, dict[AlertKind, str]]] = {
    "fi": {
        AlertKind.DROP: "Keskiarvo laski",
        AlertKind.POLARISATION: "Tyytymättömien osuus kasvoi",
        AlertKind.TARGET_BREACH: "Tyytyväisten osuus alle tavoitteen",
        AlertKind.KPI_BREACH: "Keskiarvo alle tavoitteen",
        AlertKind.SILENCE: "Hiljaista: vastauksia tai viestejä ei tule",
    },
    "sv": {
        AlertKind.DROP: "Medelvärdet sjönk",
        AlertKind.POLARISATION: "Andelen missnöjda ökade",
        AlertKind.TARGET_BREACH: "Andelen nöjda under målet",
        AlertKind.KPI_BREACH: "Medelvärdet under målet",
        AlertKind.SILENCE: "Tyst: svar eller meddelanden uteblir",
    },
    "en": {
        AlertKind.DROP: "Mean score dropped",
        AlertKind.POLARISATION: "More dissatisfied answers",
        AlertKind.TARGET_BREACH: "Satisfied share below target",
        AlertKind.KPI_BREACH: "Mean score below target",
        AlertKind.SILENCE: "Silence: answers or messages stopped",
    },
}
_SEVERITY: Final[dict[str, dict[Severity, str]]] = {
    "fi": {
        Severity.INFO: "tiedoksi",
        Severity.WARNING: "varoitus",
        Severity.CRITICAL: "kiireellinen",
    },
    "sv": {
        Severity.INFO: "för kännedom",
        Severity.WARNING: "varning",
        Severity.CRITICAL: "brådskande",
    },
    "en": {
        Severity.INFO: "for information",
        Severity.WARNING: "warning",
        Severity.CRITICAL: "urgent",
    },
}
_STATE: Final[dict[str, dict[str, str]]] = {
    "fi": {"firing": "käynnissä", "acknowledged": "kuitattu", "resolved": "päättynyt"},
    "sv": {"firing": "pågår", "acknowledged": "kvitterat", "resolved": "avslutat"},
    "en": {"firing": "active", "acknowledged": "acknowledged", "resolved": "resolved"},
}
_WORDS: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "drop": "Keskiarvo laski {before_ela} {after_ill} viimeisimmissä {n} vastauksessa.",
        "drop_back": "Keskiarvo on palannut: {after} viimeisimmissä {n} vastauksessa "
        "(lähtötaso {before}).",
        "polarisation": "Tyytymättömien osuus nousi {before_ela} {after_ill} "
        "viimeisimmissä {n} vastauksessa.",
        "polarisation_back": "Tyytymättömien osuus on palannut: {after} viimeisimmissä "
        "{n} vastauksessa (lähtötaso {before}).",
        "not_chance": "Muutos on liian suuri ja pitkäkestoinen ollakseen tavallista vaihtelua.",
        "target": "Tyytyväisiä on {share} {n} vastauksesta; tavoite on {target}.",
        "target_bound": "Otoksen koko huomioiden osuus on luultavasti enintään {upper}.",
        "kpi": "{name} on {mean} viimeisen viikon {n} vastauksessa; tavoite on {target}.",
        "kpi_bound": "Otoksen koko huomioiden se on luultavasti enintään {upper}.",
        "back": "Tavoite täyttyy taas.",
        "silence": "{what}: {observed} kun tavallisesti {expected}.",
        "rare": "Näin vähän sattumalta on harvinaisempaa kuin 1/{odds}.",
        "likely": "Näin vähän sattumalta: todennäköisyys {chance}.",
        "silence_back": "{what}: taas {observed}, tavallisesti {expected}.",
        "mean": "Keskiarvo",
        "since": "Alkoi {time}.",
        "until": "Alkoi {time}, päättyi {end}.",
        "answers": "vastauksia",
        "deliveries": "toimitettuja viestejä",
        "contacts": "asiointeja",
        "activity": "tapahtumia",
    },
    "sv": {
        "drop": "Medelvärdet sjönk från {before} till {after} i de senaste {n} svaren.",
        "drop_back": "Medelvärdet är tillbaka: {after} i de senaste {n} svaren "
        "(utgångsnivå {before}).",
        "polarisation": "Andelen missnöjda steg från {before} till {after} i de senaste "
        "{n} svaren.",
        "polarisation_back": "Andelen missnöjda är tillbaka: {after} i de senaste {n} svaren "
        "(utgångsnivå {before}).",
        "not_chance": "Förändringen är för stor och varaktig för att vara vanlig variation.",
        "target": "Andelen nöjda är {share} av {n} svar; målet är {target}.",
        "target_bound": "Med urvalets storlek beaktad är andelen troligen högst {upper}.",
        "kpi": "{name} är {mean} i veckans {n} svar; målet är {target}.",
        "kpi_bound": "Med urvalets storlek beaktad är det troligen högst {upper}.",
        "back": "Målet uppfylls igen.",
        "silence": "{what}: {observed} mot normalt {expected}.",
        "rare": "Så få av en slump är ovanligare än 1 på {odds}.",
        "likely": "Så få av en slump: sannolikhet {chance}.",
        "silence_back": "{what}: åter {observed}, normalt {expected}.",
        "mean": "Medelvärdet",
        "since": "Började {time}.",
        "until": "Började {time}, slutade {end}.",
        "answers": "svar",
        "deliveries": "levererade meddelanden",
        "contacts": "ärenden",
        "activity": "händelser",
    },
    "en": {
        "drop": "The mean score fell from {before} to {after} over the latest {n} answers.",
        "drop_back": "The mean score is back: {after} over the latest {n} answers "
        "(baseline {before}).",
        "polarisation": "The share of dissatisfied answers rose from {before} to {after} "
        "over the latest {n} answers.",
        "polarisation_back": "The share of dissatisfied answers is back: {after} over the "
        "latest {n} answers (baseline {before}).",
        "not_chance": "The change is too large and lasting to be ordinary variation.",
        "target": "{share} of {n} answers are satisfied; the target is {target}.",
        "target_bound": "Allowing for the sample size, the share is probably at most {upper}.",
        "kpi": "{name} is {mean} over the week's {n} answers; the target is {target}.",
        "kpi_bound": "Allowing for the sample size, it is probably at most {upper}.",
        "back": "The target is met again.",
        "silence": "{what}: {observed} where {expected} are usual.",
        "rare": "So few by chance is rarer than 1 in {odds}.",
        "likely": "So few by chance: probability {chance}.",
        "silence_back": "{what}: {observed} again, {expected} usual.",
        "mean": "The mean score",
        "since": "Started {time}.",
        "until": "Started {time}, ended {end}.",
        "answers": "answers",
        "deliveries": "messages delivered",
        "contacts": "contacts",
        "activity": "activity",
    },
}
#: Finnish endings after a numeral, by how its last word is read: elative and illative.
_FI_ENDINGS: Final = {
    "0": ("sta", "aan"),
    "1": ("stä", "een"),
    "2": ("sta", "een"),
    "3": ("sta", "een"),
    "4": ("stä", "ään"),
    "5": ("stä", "een"),
    "6": ("sta", "een"),
    "7": ("stä", "ään"),
    "8": ("sta", "aan"),
    "9": ("stä", "ään"),
}
_ODDS: Final = (1_000_000, 100_000, 10_000, 1000, 100, 10)


@dataclass(frozen=True, slots=True)
class AlertWords:
    """An alert in one language: a title, its labels and the explanation."""

    title: str
    touchpoint: str
    severity: str
    state: str
    explanation: str
    when: str

    def lines(self) -> list[str]:
        """Give the alert as plain text lines, for an email or a chat message."""
        return [
            f"{self.title}: {self.touchpoint} ({self.severity}, {self.state})",
            self.explanation,
            self.when,
        ]


def touchpoint_name(entry: TouchpointConfig | None, touchpoint_id: str, language: str) -> str:
    """Name a touchpoint in ``language``: its service name there, else its name, else its id."""
    if entry is None:
        return touchpoint_id
    for code, name in (entry.service or {}).items():
        if code.value == language:
            return name
    return entry.name or touchpoint_id


def number(value: float, language: str, digits: int = 2) -> str:
    """Write a figure with the language's decimal mark (comma in fi and sv)."""
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        text = "\N{MINUS SIGN}" + text[1:]
    return text if language == "en" else text.replace(".", ",")


def percent(value: float, language: str, digits: int = 0) -> str:
    """Write a share as a percentage (a space before % in fi and sv)."""
    figure = number(value * 100, language, digits)
    return f"{figure}%" if language == "en" else f"{figure}\N{NO-BREAK SPACE}%"


def apart(value: float, other: float, *, digits: int, most: int) -> int:
    """Give the fewest digits (from ``digits``) at which two different figures look different."""
    while digits < most and value != other and f"{value:.{digits}f}" == f"{other:.{digits}f}":
        digits += 1
    return digits


def one_in(probability: float) -> int | None:
    """Give the largest round N with probability below 1/N, or None when it is above 1/10."""
    for odds in _ODDS:
        if probability < 1 / odds:
            return odds
    return None


def with_case(figure: str, case: str) -> str:
    """Add the Finnish elative (``ela``) or illative (``ill``) ending to a written figure.

    The ending follows the last word read aloud: "3,09" ends in "yhdeksän"
    (3,09:ään), "3,10" in "kymmenen" (3,10:een), "4,00" in "nolla".
    """
    if figure.endswith("%"):
        return f"{figure}:{'sta' if case == 'ela' else 'iin'}"
    whole, _, decimals = figure.partition(",")
    read = decimals or whole
    digits = "".join(ch for ch in read if ch.isdigit())
    ending = _spoken_ending(int(digits) if digits else 0)
    return f"{figure}:{ending[0] if case == 'ela' else ending[1]}"


def _spoken_ending(value: int) -> tuple[str, str]:
    if value == 0:
        return _FI_ENDINGS["0"]  # nolla
    tens = value % 100
    if 10 <= tens <= 19 or (tens and not value % 10):  # noqa: PLR2004 - "-toista", "-kymmentä"
        return ("stä", "een")
    if value % 10:
        return _FI_ENDINGS[str(value % 10)]
    if value % 1000:
        return ("sta", "aan")  # sata
    return ("sta", "een")  # tuhat


def local_time(moment: datetime, zone: tzinfo, language: str) -> str:
    """Write a time as people there read it: 7.12.2026 klo 14.05 (the zone's own time)."""
    at = moment.astimezone(zone)
    if language == "fi":
        return f"{at.day}.{at.month}.{at.year} klo {at:%H.%M}"
    if language == "sv":
        return f"{at.day}.{at.month}.{at.year} kl. {at:%H.%M}"
    return f"{at.day} {at:%b} {at.year} {at:%H:%M} {at.tzname() or ''}".rstrip()


def explain(
    alert: ScoreDropAlert,
    language: str,
    *,
    zone: tzinfo,
    touchpoint: str,
    acknowledged: bool = False,
) -> AlertWords:
    """Tell an alert in ``language`` (fi, sv or en; anything else is English)."""
    language = language if language in LANGUAGES else "en"
    firing = alert.state is AlertState.FIRING
    state = "resolved" if not firing else "acknowledged" if acknowledged else "firing"
    started = local_time(alert.started_at, zone, language)
    words = _WORDS[language]
    when = (
        words["until"].format(time=started, end=local_time(alert.resolved_at, zone, language))
        if alert.resolved_at is not None
        else words["since"].format(time=started)
    )
    return AlertWords(
        title=_KIND[language][alert.kind],
        touchpoint=touchpoint,
        severity=_SEVERITY[language][alert.severity],
        state=_STATE[language][state],
        explanation=_explanation(alert, language, firing=firing),
        when=when,
    )


def _explanation(alert: ScoreDropAlert, language: str, *, firing: bool) -> str:
    if alert.kind is AlertKind.TARGET_BREACH:
        return _against_target(alert, language, firing=firing, share=True)
    if alert.kind is AlertKind.KPI_BREACH:
        return _against_target(alert, language, firing=firing, share=False)
    if alert.kind is AlertKind.SILENCE:
        return _silence(alert, language, firing=firing)
    return _change(alert, language, firing=firing)


def _change(alert: ScoreDropAlert, language: str, *, firing: bool) -> str:
    words = _WORDS[language]
    share = alert.kind is AlertKind.POLARISATION
    if alert.before is None or alert.after is None:
        return words["not_chance"]
    before, after = alert.before, alert.after
    if share:
        digits = apart(before * 100, after * 100, digits=0, most=1)
        first, second = percent(before, language, digits), percent(after, language, digits)
    else:
        digits = apart(before, after, digits=2, most=3)
        first, second = number(before, language, digits), number(after, language, digits)
    key = alert.kind.value if firing else f"{alert.kind.value}_back"
    text = words[key].format(
        before=first,
        after=second,
        before_ela=with_case(first, "ela"),
        after_ill=with_case(second, "ill"),
        n=alert.sample_size,
    )
    return f"{text} {words['not_chance']}" if firing else text


def _against_target(alert: ScoreDropAlert, language: str, *, firing: bool, share: bool) -> str:
    words = _WORDS[language]
    target = alert.target if alert.target is not None else alert.evidence.threshold or 0.0
    figure = alert.after or 0.0
    upper = alert.evidence.statistic
    compared = upper if upper is not None else figure
    if share:
        digits = apart(compared * 100, target * 100, digits=0, most=1)
        text = words["target"].format(
            share=percent(figure, language, digits),
            n=alert.sample_size,
            target=percent(target, language, digits),
        )
    else:
        digits = apart(compared, target, digits=2, most=3)
        # The detector names the figure: "NPS ..." or "mean score ...".
        name = "NPS" if alert.summary.startswith("NPS") else words["mean"]
        text = words["kpi"].format(
            name=name,
            mean=number(figure, language, digits),
            n=alert.sample_size,
            target=number(target, language, digits),
        )
    if not firing:
        return f"{text} {words['back']}"
    if upper is not None:
        shown = percent(upper, language, digits) if share else number(upper, language, digits)
        text = f"{text} {words['target_bound' if share else 'kpi_bound'].format(upper=shown)}"
    return text


def _silence(alert: ScoreDropAlert, language: str, *, firing: bool) -> str:
    words = _WORDS[language]
    signal = alert.summary.partition(":")[0].split(",")[0].strip()
    what = (
        words.get(signal, words["activity"])
        if signal in {"answers", "deliveries", "contacts"}
        else words["activity"]
    )
    what = what[:1].upper() + what[1:]
    observed = str(int(alert.after or 0))
    expected = str(round(alert.before or 0.0))
    if not firing:
        return words["silence_back"].format(what=what, observed=observed, expected=expected)
    text = words["silence"].format(what=what, observed=observed, expected=expected)
    probability = alert.evidence.probability
    if probability is None:
        return text
    odds = one_in(probability)
    if odds is not None:
        grouped = f"{odds:,}".replace(",", "\N{NO-BREAK SPACE}" if language != "en" else ",")
        return f"{text} {words['rare'].format(odds=grouped)}"
    chance = percent(probability, language, 0)
    return f"{text} {words['likely'].format(chance=chance)}"
