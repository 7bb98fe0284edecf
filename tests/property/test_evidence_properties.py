"""Properties of the scanner evidence rule over generated histories (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evidence import (
    AUTOMATIC,
    EMAIL_RULES,
    SMS_RULES,
    EvidenceRules,
    Interaction,
    InteractionKind,
    Verdict,
    assess,
)

DELIVERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINKS = ("score-1", "score-2", "score-3", "score-4", "score-5", "page", "unsubscribe", "honeypot")
MESSAGE_LINKS = frozenset(LINKS) - {"honeypot"}
#: Up to thirty days after delivery, to the millisecond.
SECONDS = st.integers(min_value=0, max_value=30 * 24 * 3600 * 1000).map(lambda ms: ms / 1000)
RULES = st.sampled_from([EMAIL_RULES, SMS_RULES, EvidenceRules(head_is_scanner=False)])


def _at(seconds: float) -> datetime:
    return DELIVERED + timedelta(seconds=seconds)


@st.composite
def automatic(draw: st.DrawFn) -> Interaction:
    """Anything a page load does by itself, by any client, at any time."""
    kind = draw(st.sampled_from(sorted(AUTOMATIC)))
    score = draw(st.integers(1, 5)) if kind is InteractionKind.AUTO_VOTE else None
    return Interaction(
        kind=kind,
        at=_at(draw(SECONDS)),
        link_id=draw(st.sampled_from(LINKS)),
        client=draw(st.sampled_from(["a", "b", "c"])),
        score=score,
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(automatic(), max_size=30), SECONDS, RULES)
def test_no_sequence_of_automatic_loads_and_votes_ever_yields_a_rating(
    items: list[Interaction], now: float, rules: EvidenceRules
) -> None:
    """Whatever a script-running scanner loads, in whatever order and pace, nothing counts."""
    result = assess(
        items, delivered_at=DELIVERED, message_links=MESSAGE_LINKS, now=_at(now), rules=rules
    )
    assert result.verdict is not Verdict.CONFIRMED
    assert all(client.verdict is not Verdict.CONFIRMED for client in result.clients)


@settings(max_examples=300, deadline=None)
@given(
    tap_at=st.integers(min_value=40, max_value=3 * 24 * 3600),
    gaps=st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=8),
    score=st.integers(1, 5),
    auto_first=st.booleans(),
    kind=st.sampled_from([InteractionKind.SCRIPT_VOTE, InteractionKind.FORM_VOTE]),
    later=st.integers(min_value=0, max_value=48 * 3600),
)
def test_a_repeated_identical_tap_counts_once_and_is_kept(  # noqa: PLR0917 - hypothesis draws each
    tap_at: int,
    gaps: list[int],
    score: int,
    auto_first: bool,
    kind: InteractionKind,
    later: int,
) -> None:
    """A double tap or a POST sent again is one answer: never a scanner's, judged as one tap."""
    first = [
        Interaction(InteractionKind.LINK_GET, _at(tap_at - 2), f"score-{score}", "phone"),
    ]
    if auto_first:
        first.append(
            Interaction(
                InteractionKind.AUTO_VOTE, _at(tap_at - 1), f"score-{score}", "phone", score
            )
        )
    taps = [Interaction(kind, _at(tap_at), f"score-{score}", "phone", score)]
    when = tap_at * 1000
    for gap in gaps:  # milliseconds: repeats from a fraction of a second to 1.5 s apart
        when += gap
        taps.append(Interaction(kind, _at(when / 1000), f"score-{score}", "phone", score))
    repeated = [*first, *taps]
    once = [*first, taps[0]]
    now = _at(when / 1000 + later)

    with_repeats = assess(repeated, delivered_at=DELIVERED, message_links=MESSAGE_LINKS, now=now)
    assert with_repeats.verdict is not Verdict.SCANNER
    assert with_repeats.vote is not None
    assert with_repeats.vote.score == score
    quiet = EMAIL_RULES.quiet_period
    assert quiet is not None
    if now >= _at(when / 1000) + max(quiet, EMAIL_RULES.settle_period):
        assert with_repeats.verdict is Verdict.CONFIRMED
        single = assess(once, delivered_at=DELIVERED, message_links=MESSAGE_LINKS, now=now)
        assert single.verdict is Verdict.CONFIRMED
        assert single.vote is not None
        assert single.vote.score == score
