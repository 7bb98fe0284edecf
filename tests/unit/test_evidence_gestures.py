"""Votes need a gesture; a person's repeats are one vote; late scanner evidence withdraws."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.evidence import (
    AUTOMATIC,
    EMAIL_RULES,
    GESTURES,
    Assessment,
    EvidenceRules,
    Interaction,
    InteractionKind,
    Reason,
    Verdict,
    VoteMode,
    assess,
    distinct_votes,
    vote_kind,
)

K = InteractionKind
DELIVERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINKS = frozenset({"score-1", "score-2", "score-3", "score-4", "score-5", "page", "unsubscribe"})
HOUR = 3600


def hit(
    kind: InteractionKind, seconds: float, link: str, client: str, score: int | None = None
) -> Interaction:
    return Interaction(
        kind=kind,
        at=DELIVERED + timedelta(seconds=seconds),
        link_id=link,
        client=client,
        score=score,
    )


def judge(items: list[Interaction], now_seconds: float) -> Assessment:
    return assess(
        items,
        delivered_at=DELIVERED,
        message_links=LINKS,
        now=DELIVERED + timedelta(seconds=now_seconds),
        rules=EMAIL_RULES,
    )


def _scanner_opening_every_link_in_order(start: float, gap: float) -> list[Interaction]:
    """Load each score link in turn as a script-running gateway does; each page votes its score."""
    items: list[Interaction] = []
    for index, score in enumerate(range(1, 6)):
        when = start + index * gap
        items.append(hit(K.LINK_GET, when, f"score-{score}", "gateway"))
        items.append(hit(K.AUTO_VOTE, when + 0.5, f"score-{score}", "gateway", score))
    return items


@pytest.mark.parametrize("gap", [0.5, 3.0, 6.0, 30.0, 400.0], ids=lambda gap: f"{gap}s apart")
def test_a_scanner_loading_every_score_link_in_turn_never_confirms(gap: float) -> None:
    """The second page's own vote for another score is no change of mind, however slow the scan."""
    items = _scanner_opening_every_link_in_order(HOUR, gap)
    for now in (HOUR + 5 * gap + 1, HOUR + 5 * gap + 60, 30 * 24 * HOUR):
        assert judge(items, now).verdict is not Verdict.CONFIRMED


def test_a_lone_page_load_with_its_own_vote_waits_for_a_tap_forever() -> None:
    """A late, single, script-running fetch of one link is exactly what a person's click sends."""
    items = [
        hit(K.LINK_GET, HOUR, "score-4", "phone"),
        hit(K.AUTO_VOTE, HOUR + 1, "score-4", "phone", 4),
    ]
    result = judge(items, 30 * 24 * HOUR)
    assert result.verdict is Verdict.PROVISIONAL
    assert result.reasons == (Reason.NO_GESTURE,)
    assert result.recheck_at is None


def test_a_tap_on_the_page_after_its_own_vote_confirms_after_the_quiet_period() -> None:
    """The citizen who opens a score link and taps it is counted, with that score."""
    items = [
        hit(K.LINK_GET, HOUR, "score-4", "phone"),
        hit(K.AUTO_VOTE, HOUR + 1, "score-4", "phone", 4),
        hit(K.SCRIPT_VOTE, HOUR + 4, "score-4", "phone", 4),
    ]
    assert judge(items, HOUR + 60).verdict is Verdict.PROVISIONAL
    result = judge(items, HOUR + 20 * 60)
    assert result.verdict is Verdict.CONFIRMED
    assert result.vote is not None
    assert result.vote.score == 4


def test_a_later_page_load_is_no_later_visit() -> None:
    """A gateway fetching the link again later is not the person coming back."""
    items = [
        hit(K.PAGE_GET, 40, "page", "phone"),
        hit(K.SCRIPT_VOTE, 41, "page", "phone", 4),
        hit(K.PAGE_GET, 41 + 6 * 60, "page", "phone"),
    ]
    result = judge(items, 41 + 6 * 60 + 1)
    assert result.verdict is Verdict.PROVISIONAL
    assert Reason.LATER_VISIT not in result.reasons


@pytest.mark.parametrize("repeats", [2, 3, 5, 20])
def test_repeats_of_the_same_score_are_one_vote_and_never_a_burst(repeats: int) -> None:
    """A double tap or a browser sending the POST again must not cost the citizen their answer."""
    items = [
        hit(K.LINK_GET, HOUR, "score-4", "phone"),
        hit(K.AUTO_VOTE, HOUR + 1, "score-4", "phone", 4),
        *(hit(K.SCRIPT_VOTE, HOUR + 3 + i * 0.05, "score-4", "phone", 4) for i in range(repeats)),
    ]
    early = judge(items, HOUR + 10)
    assert early.verdict is Verdict.PROVISIONAL
    assert Reason.VOTE_BURST not in early.reasons
    result = judge(items, HOUR + 20 * 60)
    assert result.verdict is Verdict.CONFIRMED
    assert result.vote is not None
    assert result.vote.score == 4


def test_taps_on_every_score_within_seconds_are_still_a_burst() -> None:
    """Collapsing repeats must leave the every-button scanner caught."""
    items = [
        hit(K.SCRIPT_VOTE, HOUR + i, "page", "bot", score) for i, score in enumerate([1, 2, 3])
    ]
    assert judge(items, 2 * HOUR).verdict is Verdict.SCANNER


def test_distinct_votes_drops_only_repeats_of_the_vote_before() -> None:
    """4, 4, 5, 4 is three answers: the return to 4 is a change of mind."""
    votes = [hit(K.SCRIPT_VOTE, i, "page", "c", score) for i, score in enumerate([4, 4, 5, 5, 4])]
    assert [vote.score for vote in distinct_votes(votes)] == [4, 5, 4]


def test_scanner_evidence_within_the_settle_period_withdraws_a_confirmation() -> None:
    """A comment confirms at once, but it is held until the burst that follows it is seen."""
    person = [
        hit(K.PAGE_GET, HOUR, "page", "phone"),
        hit(K.SCRIPT_VOTE, HOUR + 2, "page", "phone", 4),
        hit(K.COMMENT, HOUR + 10, "page", "phone"),
    ]
    held = judge(person, HOUR + 11)
    assert held.verdict is Verdict.PROVISIONAL
    assert held.reasons[0] is Reason.SETTLING
    assert held.recheck_at == DELIVERED + timedelta(seconds=HOUR + 10) + EMAIL_RULES.settle_period
    late_honeypot = [*person, hit(K.HONEYPOT, HOUR + 25, "honeypot", "phone")]
    assert judge(late_honeypot, HOUR + 3600).verdict is Verdict.SCANNER
    assert judge(person, HOUR + 40).verdict is Verdict.CONFIRMED


def test_settling_can_be_turned_off() -> None:
    """A deployment that trusts its evidence may count at once."""
    rules = EvidenceRules(settle_period=timedelta(0))
    items = [hit(K.SCRIPT_VOTE, HOUR, "page", "p", 4), hit(K.COMMENT, HOUR + 5, "page", "p")]
    now = DELIVERED + timedelta(seconds=HOUR + 5)
    assert assess(
        items, delivered_at=DELIVERED, message_links=LINKS, now=now, rules=rules
    ).verdict is (Verdict.CONFIRMED)
    with pytest.raises(ValueError, match="settle_period"):
        EvidenceRules(settle_period=timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("mode", "previous", "score", "kind"),
    [
        (VoteMode.AUTO, None, 4, K.AUTO_VOTE),
        (VoteMode.AUTO, 2, 4, K.AUTO_VOTE),  # the next link's page: still automatic
        (VoteMode.TAP, None, 4, K.SCRIPT_VOTE),
        (VoteMode.TAP, 4, 4, K.SCRIPT_VOTE),  # a repeat
        (VoteMode.TAP, 2, 4, K.SCORE_CHANGE),
        (VoteMode.FORM, None, 4, K.FORM_VOTE),
        (VoteMode.FORM, 3, 4, K.SCORE_CHANGE),
    ],
)
def test_a_posted_vote_is_named_by_its_mode_and_the_clients_previous_vote(
    mode: VoteMode, previous: int | None, score: int, kind: InteractionKind
) -> None:
    """Only a person's tap on another score is a change of mind."""
    assert vote_kind(mode, previous, score) is kind


@pytest.mark.parametrize("raw", [None, "", "script", "TAP", "tap ", "x" * 100])
def test_an_unknown_mode_is_automatic(raw: str | None) -> None:
    """A client that says nothing, or what old pages said, has made no gesture we can see."""
    assert VoteMode.parse(raw) is VoteMode.AUTO
    assert VoteMode.parse("tap") is VoteMode.TAP
    assert VoteMode.parse("form") is VoteMode.FORM


def test_every_kind_is_either_automatic_or_a_gesture() -> None:
    """A new kind must be put on one side on purpose."""
    assert frozenset(InteractionKind) == AUTOMATIC | GESTURES
    assert not AUTOMATIC & GESTURES
    assert K.AUTO_VOTE in AUTOMATIC


def test_wavering_between_two_scores_is_no_burst() -> None:
    """A person tapping 4, 5, 4, 5 within seconds is undecided, not pressing every button."""
    items = [
        hit(K.SCRIPT_VOTE, HOUR + i, "page", "p", score) for i, score in enumerate([4, 5, 4, 5])
    ]
    result = judge(items, HOUR + 20 * 60)
    assert result.verdict is Verdict.CONFIRMED
    assert result.vote is not None
    assert result.vote.score == 5
