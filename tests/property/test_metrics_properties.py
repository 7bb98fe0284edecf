"""Properties of the rolling metrics that must hold for any stream of ratings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.metrics import DEFAULT_WINDOWS, apply_rating, expire, new_state, snapshot
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SCALE = Scale.CSAT_5


def make(index: int, score: int, minutes_ago: int, revision: int = 1) -> Rating:
    return Rating(
        rating_id=f"r{index}.{revision}",
        survey_id=f"s{index}",
        revision=revision,
        touchpoint_id="tp-1",
        service="svc",
        touchpoint_channel=TouchpointChannel.CHAT,
        survey_channel=SurveyChannel.EMAIL,
        language=Language.SV,
        scale=SCALE,
        score=score,
        normalised=SCALE.normalise(score),
        answered_after_seconds=float(minutes_ago),
        answered_at=NOW - timedelta(minutes=minutes_ago),
    )


answers = st.lists(
    st.tuples(st.integers(1, 5), st.integers(0, 40 * 24 * 60)), min_size=0, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(answers, st.randoms(use_true_random=False))
def test_aggregation_does_not_depend_on_arrival_order(
    scored: list[tuple[int, int]], shuffler: object
) -> None:
    """Partitions replay in any order after a rebalance; the figures must not change."""
    ratings = [make(i, score, ago) for i, (score, ago) in enumerate(scored)]
    forward = new_state(SCALE)
    for item in ratings:
        forward = apply_rating(forward, item)
    shuffled = list(ratings)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    backward = new_state(SCALE)
    for item in shuffled:
        backward = apply_rating(backward, item)
    assert forward.to_dict() == backward.to_dict()


@settings(max_examples=60, deadline=None)
@given(answers, st.integers(1, 5), st.integers(1, 5), st.integers(0, 3000))
def test_replacing_an_answer_equals_never_having_given_the_first(
    scored: list[tuple[int, int]], first: int, second: int, ago: int
) -> None:
    """Retraction must restore exactly the state without the replaced rating."""
    base = new_state(SCALE)
    for i, (score, minutes) in enumerate(scored):
        base = apply_rating(base, make(i, score, minutes))
    original = make(999, first, ago)
    replaced = apply_rating(apply_rating(base, original), make(999, second, ago, 2), original)
    direct = apply_rating(base, make(999, second, ago, 2))
    assert replaced.to_dict() == direct.to_dict()


@settings(max_examples=60, deadline=None)
@given(answers)
def test_scores_and_shares_stay_on_their_scale(scored: list[tuple[int, int]]) -> None:
    """A mean outside 1..5 or a share over 1 would be a bug ops could not see."""
    state = new_state(SCALE)
    for i, (score, ago) in enumerate(scored):
        state = apply_rating(state, make(i, score, ago))
    for window in DEFAULT_WINDOWS:
        figures = snapshot(state, window, NOW, key="tp-1")
        assert all(SCALE.contains(int(score)) for score in figures.distribution)
        if figures.count:
            assert figures.mean is not None
            assert SCALE.low <= figures.mean <= SCALE.high
            assert figures.csat_share is not None
            assert 0.0 <= figures.csat_share <= 1.0


@settings(max_examples=60, deadline=None)
@given(answers, st.integers(0, 60 * 24 * 3))
def test_windows_never_include_expired_ratings(
    scored: list[tuple[int, int]], later_minutes: int
) -> None:
    """A rating at or before now minus the window must never count in that window."""
    state = new_state(SCALE)
    for i, (score, ago) in enumerate(scored):
        state = apply_rating(state, make(i, score, ago))
    now = NOW + timedelta(minutes=later_minutes)
    pruned = expire(state, now)
    for window in DEFAULT_WINDOWS:
        inside = sum(1 for _, ago in scored if now - window < NOW - timedelta(minutes=ago) <= now)
        counted = snapshot(state, window, now, key="tp-1").count
        # Buckets are whole: the window may lose the oldest partial bucket, never gain.
        assert counted <= inside
        assert snapshot(pruned, window, now, key="tp-1").count == counted
