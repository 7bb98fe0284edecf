"""Alerts told in plain words: the sentence the page, the email and the webhook share."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.alert_text import apart, explain, local_time, one_in, touchpoint_name, with_case
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.config import TouchpointConfig

HELSINKI = ZoneInfo("Europe/Helsinki")
STARTED = datetime(2026, 12, 7, 12, 5, tzinfo=UTC)


def _alert(kind: AlertKind, **fields: object) -> ScoreDropAlert:
    values: dict[str, object] = {
        "alert_id": f"{kind.value}-abc",
        "touchpoint_id": "phone-service",
        "kind": kind,
        "state": AlertState.FIRING,
        "severity": Severity.WARNING,
        "started_at": STARTED,
        "sample_size": 66,
        "evidence": Evidence(method="cusum", statistic=7.1, threshold=6.0),
        "summary": "detector's own words",
        "before": 4.24,
        "after": 3.09,
    }
    values.update(fields)
    return ScoreDropAlert.model_validate(values)


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        ("fi", "Keskiarvo laski 4,24:stä 3,09:ään viimeisimmissä 66 vastauksessa."),
        ("sv", "Medelvärdet sjönk från 4,24 till 3,09 i de senaste 66 svaren."),
        ("en", "The mean score fell from 4.24 to 3.09 over the latest 66 answers."),
    ],
)
def test_a_drop_reads_as_a_sentence_in_each_language(language: str, sentence: str) -> None:
    """The example operators asked for, word for word, with the language's decimal mark."""
    words = explain(_alert(AlertKind.DROP), language, zone=HELSINKI, touchpoint="Puhelinpalvelu")
    assert words.explanation.startswith(sentence)
    assert words.touchpoint == "Puhelinpalvelu"


def test_a_finnish_page_has_no_english_or_statistical_jargon() -> None:
    """No "target-breach", "warning", "statistic" or "threshold" in Finnish."""
    for kind in AlertKind:
        words = explain(
            _alert(kind, target=0.65, evidence=Evidence(method="x", statistic=0.6, threshold=0.65)),
            "fi",
            zone=HELSINKI,
            touchpoint="Puhelinpalvelu",
        )
        text = " ".join(words.lines()).lower()
        for jargon in ("target", "breach", "warning", "statistic", "threshold", "cusum", kind):
            assert jargon not in text, (kind, jargon, text)


def test_times_are_the_policys_local_time() -> None:
    """12:05 UTC in December is 14:05 in Helsinki; the page must not make people convert."""
    words = explain(_alert(AlertKind.DROP), "fi", zone=HELSINKI, touchpoint="x")
    assert words.when == "Alkoi 7.12.2026 klo 14.05."
    assert local_time(STARTED, HELSINKI, "sv") == "7.12.2026 kl. 14.05"
    assert local_time(STARTED, HELSINKI, "en") == "7 Dec 2026 14:05 EET"


def test_a_bound_never_rounds_onto_its_target() -> None:
    """A bound of 65 % against a target of 65 % made the alert look like a mistake."""
    alert = _alert(
        AlertKind.TARGET_BREACH,
        before=None,
        after=0.58,
        target=0.65,
        sample_size=120,
        evidence=Evidence(method="wilson-upper-bound", statistic=0.6462, threshold=0.65),
    )
    text = explain(alert, "fi", zone=HELSINKI, touchpoint="x").explanation
    assert "Tyytyväisiä on 58,0\N{NO-BREAK SPACE}% 120 vastauksesta" in text
    assert "tavoite on 65,0\N{NO-BREAK SPACE}%" in text
    assert "enintään 64,6\N{NO-BREAK SPACE}%" in text


def test_figures_far_from_their_target_keep_whole_percentages() -> None:
    """More digits only where rounding would hide the difference."""
    assert apart(52.0, 65.0, digits=0, most=1) == 0
    assert apart(64.6, 65.0, digits=0, most=1) == 1
    assert apart(4.001, 4.004, digits=2, most=3) == 3


def test_a_silence_says_how_rare_it_is_by_chance() -> None:
    """The reader gets odds, not a p-value."""
    alert = _alert(
        AlertKind.SILENCE,
        before=40.0,
        after=3.0,
        sample_size=3,
        summary="answers: 3 observed against 40 expected",
        evidence=Evidence(method="poisson-lower-tail", statistic=0.07, probability=0.00004),
    )
    fi = explain(alert, "fi", zone=HELSINKI, touchpoint="x").explanation
    assert fi == (
        "Vastauksia: 3 kun tavallisesti 40. "
        "Näin vähän sattumalta on harvinaisempaa kuin 1/10\N{NO-BREAK SPACE}000."
    )
    en = explain(alert, "en", zone=HELSINKI, touchpoint="x").explanation
    assert en.endswith("rarer than 1 in 10,000.")


@pytest.mark.parametrize(
    ("probability", "odds"), [(0.00004, 10_000), (0.0009, 1000), (0.05, 10), (0.2, None)]
)
def test_odds_are_a_round_bound_below_the_probability(probability: float, odds: int | None) -> None:
    """Saying rarer than 1/1 000 must be true: the probability is below it."""
    assert one_in(probability) == odds


@pytest.mark.parametrize(
    ("figure", "elative", "illative"),
    [
        ("4,24", "4,24:stä", "4,24:ään"),
        ("3,09", "3,09:stä", "3,09:ään"),
        ("3,10", "3,10:stä", "3,10:een"),
        ("3,12", "3,12:stä", "3,12:een"),
        ("4,00", "4,00:sta", "4,00:aan"),
        ("2,58", "2,58:sta", "2,58:aan"),
        ("3,01", "3,01:stä", "3,01:een"),
        ("100", "100:sta", "100:aan"),
        ("12\N{NO-BREAK SPACE}%", "12\N{NO-BREAK SPACE}%:sta", "12\N{NO-BREAK SPACE}%:iin"),
    ],
)
def test_finnish_endings_follow_how_the_figure_is_read(
    figure: str, elative: str, illative: str
) -> None:
    """As in 4,24:stä 3,09:ään, the ending agrees with the last word read aloud."""
    assert with_case(figure, "ela") == elative
    assert with_case(figure, "ill") == illative


def test_an_acknowledged_alert_says_so_and_a_resolved_one_says_when_it_ended() -> None:
    """State in words, so that it is not told by colour alone."""
    acked = explain(_alert(AlertKind.DROP), "sv", zone=HELSINKI, touchpoint="x", acknowledged=True)
    assert acked.state == "kvitterat"
    resolved = _alert(
        AlertKind.DROP,
        state=AlertState.RESOLVED,
        resolved_at=datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
        after=4.1,
    )
    words = explain(resolved, "en", zone=HELSINKI, touchpoint="x")
    assert words.state == "resolved"
    assert words.explanation.startswith("The mean score is back: 4.10")
    assert words.when == "Started 7 Dec 2026 14:05 EET, ended 7 Dec 2026 17:00 EET."


def test_a_touchpoint_is_named_in_the_readers_language_where_the_catalogue_has_it() -> None:
    """Swedish readers see the Swedish service name; without one, the catalogue's name."""
    entry = TouchpointConfig.model_validate(
        {"name": "Puhelinpalvelu", "service": {"fi": "Puhelinpalvelu", "sv": "Telefontjänst"}}
    )
    assert touchpoint_name(entry, "phone-service", "sv") == "Telefontjänst"
    assert touchpoint_name(entry, "phone-service", "en") == "Puhelinpalvelu"
    assert touchpoint_name(None, "phone-service", "en") == "phone-service"
