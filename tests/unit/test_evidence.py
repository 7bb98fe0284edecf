"""The scanner evidence rule: which one-tap votes count, which wait, which never count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.evidence import (
    EMAIL_RULES,
    SMS_RULES,
    Assessment,
    EvidenceRules,
    Interaction,
    InteractionKind,
    Reason,
    Verdict,
    assess,
)

K = InteractionKind
DELIVERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINKS = frozenset({"s1", "s2", "s3", "s4", "s5", "page", "unsub", "hp"})
HOUR = 3600


def at(seconds: float) -> datetime:
    return DELIVERED + timedelta(seconds=seconds)


def hit(
    kind: InteractionKind, seconds: float, link: str, client: str, score: int | None = None
) -> Interaction:
    return Interaction(kind=kind, at=at(seconds), link_id=link, client=client, score=score)


def judge(
    items: list[Interaction], now_seconds: float, rules: EvidenceRules = EMAIL_RULES
) -> Assessment:
    return assess(
        items, delivered_at=DELIVERED, message_links=LINKS, now=at(now_seconds), rules=rules
    )


SAFE_LINKS_ONE_CLIENT = [
    *(hit(K.LINK_GET, 1 + i * 0.3, f"s{i + 1}", "scan") for i in range(5)),
    hit(K.PAGE_GET, 2.5, "page", "scan"),
    hit(K.SCRIPT_VOTE, 2.8, "s1", "scan", 1),
]
SAFE_LINKS_MANY_CLIENTS = [
    hit(K.LINK_GET, 40.0, "s1", "scan-a"),
    hit(K.LINK_GET, 40.5, "s2", "scan-b"),
    hit(K.LINK_GET, 41.0, "s3", "scan-c"),
    hit(K.SCRIPT_VOTE, 41.5, "s1", "scan-a", 1),
]
HEAD_FIRST = [
    hit(K.HEAD, 300, "s4", "gateway"),
    hit(K.LINK_GET, 301, "s4", "gateway"),
    hit(K.SCRIPT_VOTE, 302, "s4", "gateway", 4),
]
HONEYPOT = [
    hit(K.LINK_GET, 1200, "s5", "crawler"),
    hit(K.SCRIPT_VOTE, 1201, "s5", "crawler", 5),
    hit(K.HONEYPOT, 1202, "hp", "crawler"),
]
TAP = [hit(K.LINK_GET, HOUR, "s4", "phone"), hit(K.SCRIPT_VOTE, HOUR + 1, "s4", "phone", 4)]
TAP_THEN_COMMENT = [*TAP, hit(K.COMMENT, HOUR + 40, "s4", "phone")]
TAP_THEN_CHANGE = [*TAP, hit(K.SCORE_CHANGE, HOUR + 20, "s4", "phone", 3)]
TAP_THEN_LATER_VISIT = [
    *TAP,
    hit(K.PAGE_GET, HOUR + 6 * 60, "page", "phone"),
    hit(K.SCRIPT_VOTE, HOUR + 6 * 60 + 5, "page", "phone", 4),
]
EVERY_BUTTON = [
    hit(K.LINK_GET, HOUR, "s4", "bot"),
    *(hit(K.SCORE_CHANGE, HOUR + 1 + i * 0.1, "s4", "bot", i + 1) for i in range(5)),
]
FAST_TAP = [hit(K.LINK_GET, 2, "s4", "phone"), hit(K.SCRIPT_VOTE, 3, "s4", "phone", 4)]

SCENARIOS = [
    (
        "safe-links, every link in 2 s",
        SAFE_LINKS_ONE_CLIENT,
        2 * HOUR,
        Verdict.SCANNER,
        (Reason.LINK_BURST,),
    ),
    (
        "burst split over addresses",
        SAFE_LINKS_MANY_CLIENTS,
        2 * HOUR,
        Verdict.SCANNER,
        (Reason.LINK_BURST,),
    ),
    ("HEAD request", HEAD_FIRST, 2 * HOUR, Verdict.SCANNER, (Reason.HEAD_REQUEST,)),
    ("honeypot hit", HONEYPOT, 2 * HOUR, Verdict.SCANNER, (Reason.HONEYPOT,)),
    ("tap then comment", TAP_THEN_COMMENT, HOUR + 90, Verdict.CONFIRMED, (Reason.SECOND_ACTION,)),
    (
        "tap then changed score",
        TAP_THEN_CHANGE,
        HOUR + 60,
        Verdict.CONFIRMED,
        (Reason.SECOND_ACTION,),
    ),
    (
        "tap, later visit",
        TAP_THEN_LATER_VISIT,
        HOUR + 7 * 60,
        Verdict.CONFIRMED,
        (Reason.LATER_VISIT,),
    ),
    (
        "tap only, quiet for a while",
        TAP,
        HOUR + 2 * 60,
        Verdict.PROVISIONAL,
        (Reason.AWAITING_QUIET_PERIOD,),
    ),
    ("tap only, quiet period over", TAP, HOUR + 20 * 60, Verdict.CONFIRMED, (Reason.QUIET_PERIOD,)),
    (
        "tap 3 s after delivery",
        FAST_TAP,
        2 * HOUR,
        Verdict.PROVISIONAL,
        (Reason.TOO_SOON_AFTER_DELIVERY,),
    ),
    ("every button in a second", EVERY_BUTTON, 2 * HOUR, Verdict.SCANNER, (Reason.VOTE_BURST,)),
    (
        "links fetched, no vote",
        [hit(K.LINK_GET, HOUR, "s4", "phone")],
        2 * HOUR,
        Verdict.NO_VOTE,
        (Reason.NO_VOTE,),
    ),
]


@pytest.mark.parametrize(
    ("items", "now", "verdict", "reasons"),
    [row[1:] for row in SCENARIOS],
    ids=[row[0] for row in SCENARIOS],
)
def test_scenario_gets_its_verdict(
    items: list[Interaction], now: float, verdict: Verdict, reasons: tuple[Reason, ...]
) -> None:
    """Each known pattern of scanners and people ends in the agreed verdict and reasons."""
    result = judge(items, now)
    assert result.verdict is verdict
    assert result.reasons == reasons
    if verdict in {Verdict.SCANNER, Verdict.NO_VOTE}:
        assert result.vote is None
    else:
        assert result.vote is not None
        assert result.vote.kind in {K.SCRIPT_VOTE, K.FORM_VOTE, K.SCORE_CHANGE}


def test_quick_tap_is_confirmed_by_a_comment() -> None:
    """A person fast enough to beat the delivery-time rule is still counted once they act again."""
    result = judge([*FAST_TAP, hit(K.COMMENT, 30, "s4", "phone")], 60)
    assert result.verdict is Verdict.CONFIRMED
    assert result.reasons == (Reason.SECOND_ACTION,)


def test_quick_tap_never_confirms_by_waiting() -> None:
    """One-link JavaScript scanners act seconds after delivery and then stay quiet."""
    result = judge(FAST_TAP, 30 * 24 * HOUR)
    assert result.verdict is Verdict.PROVISIONAL
    assert result.recheck_at is None


def test_sms_rules_have_no_delivery_time_rule() -> None:
    """Mail gateways do not scan SMS links, and people tap them at once."""
    assert judge(FAST_TAP, 20 * 60, SMS_RULES).verdict is Verdict.CONFIRMED


def test_provisional_vote_says_when_to_look_again() -> None:
    """The shell schedules one re-assessment instead of polling."""
    result = judge(TAP, HOUR + 60)
    assert EMAIL_RULES.quiet_period is not None
    assert result.recheck_at == at(HOUR + 1) + EMAIL_RULES.quiet_period
    assert judge(TAP, (result.recheck_at - DELIVERED).total_seconds()).verdict is Verdict.CONFIRMED


def test_human_vote_counts_beside_a_scanner() -> None:
    """A scanner's burst must not hide the citizen's own answer an hour later."""
    result = judge([*SAFE_LINKS_ONE_CLIENT, *TAP_THEN_COMMENT], 2 * HOUR)
    assert result.verdict is Verdict.CONFIRMED
    assert result.vote is not None
    assert (result.vote.client, result.vote.score) == ("phone", 4)
    verdicts = {client.client: client.verdict for client in result.clients}
    assert verdicts == {"scan": Verdict.SCANNER, "phone": Verdict.CONFIRMED}


def test_changed_score_is_the_one_counted() -> None:
    """A citizen who corrects their answer is counted with the correction."""
    result = judge(TAP_THEN_CHANGE, HOUR + 30)
    assert result.vote is not None
    assert result.vote.score == 3


def test_late_honeypot_hit_withdraws_a_confirmed_vote() -> None:
    """Verdicts follow the whole history, so late evidence still protects the metrics."""
    assert judge(TAP, HOUR + 20 * 60).verdict is Verdict.CONFIRMED
    late = [*TAP, hit(K.HONEYPOT, HOUR + 30 * 60, "hp", "phone")]
    assert judge(late, HOUR + 31 * 60).verdict is Verdict.SCANNER


def test_interactions_after_now_are_not_seen() -> None:
    """Replaying history at an earlier instant must give the verdict of that instant."""
    assert judge(TAP_THEN_COMMENT, HOUR + 10).verdict is Verdict.PROVISIONAL


def test_order_of_interactions_does_not_matter() -> None:
    """Requests arrive at several web workers and are merged in any order."""
    items = [*SAFE_LINKS_MANY_CLIENTS, *TAP_THEN_CHANGE, *HONEYPOT]
    expected = judge(items, 2 * HOUR)
    interleaved = items[1::2] + list(reversed(items[::2]))
    assert judge(interleaved, 2 * HOUR) == expected
    assert judge(list(reversed(items)), 2 * HOUR) == expected


def test_two_taps_on_a_one_link_message_are_no_burst() -> None:
    """An SMS with one link cannot show a burst; two quick taps are a person's."""
    items = [
        hit(K.PAGE_GET, HOUR, "page", "phone"),
        hit(K.PAGE_GET, HOUR + 1, "page", "phone"),
        hit(K.SCRIPT_VOTE, HOUR + 2, "page", "phone", 4),
    ]
    result = assess(items, delivered_at=DELIVERED, message_links={"page"}, now=at(HOUR + 3))
    assert result.verdict is Verdict.PROVISIONAL


def test_head_can_be_ignored_by_configuration() -> None:
    """Some proxies send HEAD before a real browser's GET; a deployment may trust them."""
    rules = EvidenceRules(head_is_scanner=False)
    assert judge(HEAD_FIRST, 2 * HOUR, rules).verdict is Verdict.CONFIRMED


def test_without_quiet_period_only_human_evidence_confirms() -> None:
    """A strict deployment counts nothing on silence alone."""
    rules = EvidenceRules(quiet_period=None)
    result = judge(TAP, 30 * 24 * HOUR, rules)
    assert result.verdict is Verdict.PROVISIONAL
    assert result.recheck_at is None
    assert judge(TAP_THEN_COMMENT, 30 * 24 * HOUR, rules).verdict is Verdict.CONFIRMED


def test_rules_refuse_a_burst_of_one() -> None:
    """A burst of one would mark every person who taps a link as a scanner."""
    with pytest.raises(ValueError, match="burst_min_links"):
        EvidenceRules(burst_min_links=1)
    with pytest.raises(ValueError, match="vote_burst_min"):
        EvidenceRules(vote_burst_min=1)
