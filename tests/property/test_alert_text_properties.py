"""Any alert the detector can write reads in plain words in every language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from engine.alert_text import LANGUAGES, apart, explain, with_case
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity

ZONE = ZoneInfo("Europe/Helsinki")
figures = st.floats(min_value=0.0, max_value=10.0, allow_nan=False) | st.none()
shares = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def alerts(draw: st.DrawFn) -> ScoreDropAlert:
    kind = draw(st.sampled_from(list(AlertKind)))
    state = draw(st.sampled_from(list(AlertState)))
    started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 10**6)))
    return ScoreDropAlert(
        alert_id=f"{kind.value}-abc",
        touchpoint_id="tp",
        kind=kind,
        state=state,
        severity=draw(st.sampled_from(list(Severity))),
        started_at=started,
        resolved_at=started + timedelta(hours=1) if state is AlertState.RESOLVED else None,
        before=draw(figures),
        after=draw(figures),
        target=draw(shares | st.none()),
        sample_size=draw(st.integers(0, 100_000)),
        evidence=Evidence(
            method="m",
            statistic=draw(figures),
            threshold=draw(figures),
            probability=draw(shares | st.none()),
        ),
        summary=draw(st.sampled_from(["answers: 3 observed", "NPS 12", "mean score", ""])),
    )


@given(alerts(), st.sampled_from(LANGUAGES), st.booleans())
def test_every_alert_is_told_in_words_without_its_codes(
    alert: ScoreDropAlert, language: str, acknowledged: bool
) -> None:
    """No kind, severity or state code, and no unfilled placeholder, reaches a reader."""
    words = explain(alert, language, zone=ZONE, touchpoint="Palvelu", acknowledged=acknowledged)
    text = " ".join(words.lines())
    assert "{" not in text
    assert words.explanation
    assert "target-breach" not in text
    assert "kpi-breach" not in text
    if language != "en":  # English words may contain the codes ("dropped"), the others not
        for code in (alert.kind.value, alert.severity.value, alert.state.value):
            assert code not in text.lower()


@given(shares, shares)
def test_different_figures_never_look_equal_after_rounding(value: float, target: float) -> None:
    """Wherever a tenth of a point separates a bound from its target, the reader sees it."""
    digits = apart(value * 100, target * 100, digits=0, most=1)
    if abs(value - target) * 100 >= 0.1:
        assert f"{value * 100:.{digits}f}" != f"{target * 100:.{digits}f}"


@given(st.integers(0, 10**6), st.integers(0, 99))
def test_a_finnish_ending_is_always_one_of_the_written_forms(whole: int, hundredths: int) -> None:
    """Whatever the figure, the ending is a real Finnish case ending after a colon."""
    figure = f"{whole},{hundredths:02d}"
    assert with_case(figure, "ela").removeprefix(figure) in {":sta", ":stä"}
    assert with_case(figure, "ill").removeprefix(figure) in {":aan", ":ään", ":een"}
