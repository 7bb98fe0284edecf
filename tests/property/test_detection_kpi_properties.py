"""KPI-breach verdicts under any sample of answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detection import KpiConfig, KpiWindow, kpi_top, kpi_value, kpi_verdict, mean_upper_bound
from schemas.base import Scale


def window(scale: Scale, scores: list[int]) -> KpiWindow:
    values = [kpi_value(scale, score) for score in scores]
    return KpiWindow(n=len(values), total=sum(values), total_sq=sum(v * v for v in values))


def answers(scale: Scale, min_size: int = 0) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(scale.low, scale.high), min_size=min_size, max_size=400)


scales = st.sampled_from(list(Scale))


@settings(max_examples=200)
@given(data=st.data(), scale=scales)
def test_the_upper_bound_lies_above_the_mean_and_within_reach_of_the_scale(
    data: st.DataObject, scale: Scale
) -> None:
    """A bound below the observed mean would call on-target touchpoints breached."""
    scores = data.draw(answers(scale, min_size=1))
    sample = window(scale, scores)
    upper = mean_upper_bound(sample, kpi_top(scale), 0.95)
    assert upper >= sample.total / sample.n - 1e-9


@settings(max_examples=200)
@given(data=st.data(), scale=scales)
def test_answers_all_at_or_above_the_target_never_breach(data: st.DataObject, scale: Scale) -> None:
    """A touchpoint where no one scored below the target cannot be below it."""
    scores = data.draw(answers(scale))
    values = [kpi_value(scale, score) for score in scores]
    target = min(values, default=kpi_top(scale))
    assert not kpi_verdict(window(scale, scores), kpi_top(scale), KpiConfig(target=target)).breached


@settings(max_examples=200)
@given(data=st.data(), scale=scales, min_sample=st.integers(2, 100))
def test_fewer_answers_than_the_minimum_never_breach(
    data: st.DataObject, scale: Scale, min_sample: int
) -> None:
    """The issue's rule: not on a handful of ratings, whatever they are."""
    scores = data.draw(st.lists(st.integers(scale.low, scale.high), max_size=min_sample - 1))
    config = KpiConfig(target=kpi_top(scale), min_sample=min_sample)
    assert not kpi_verdict(window(scale, scores), kpi_top(scale), config).breached


@settings(max_examples=200)
@given(data=st.data(), scale=scales)
def test_a_breach_is_never_also_recovered(data: st.DataObject, scale: Scale) -> None:
    """Hysteresis needs the two verdicts apart, or an alert would fire and clear at once."""
    scores = data.draw(answers(scale, min_size=30))
    target = data.draw(st.floats(kpi_value(scale, scale.low), kpi_top(scale)))
    verdict = kpi_verdict(window(scale, scores), kpi_top(scale), KpiConfig(target=target))
    assert not (verdict.breached and verdict.recovered)


@settings(max_examples=100)
@given(data=st.data(), scale=scales, copies=st.integers(2, 10))
def test_more_of_the_same_answers_tighten_the_bound(
    data: st.DataObject, scale: Scale, copies: int
) -> None:
    """Evidence accumulates: the same mix over more answers is judged more surely."""
    scores = data.draw(st.lists(st.integers(scale.low, scale.high), min_size=5, max_size=80))
    few = mean_upper_bound(window(scale, scores), kpi_top(scale), 0.95)
    many = mean_upper_bound(window(scale, scores * copies), kpi_top(scale), 0.95)
    assert many <= few + 1e-9
