"""Telling a citizen's tap from an email security scanner's, from what each client did.

Security gateways (Microsoft Safe Links, Proofpoint, Mimecast) fetch every
link of a message as it is delivered, and some run the page's JavaScript, so a
link "click" alone proves nothing. Each vote is therefore judged from the
interactions seen for one survey message, client by client (a client is a
fingerprint hash made by the web shell; no address is kept raw).

**Automatic** interactions are what a page load does by itself, whoever
loads it: a GET or HEAD of a link, the honeypot, and the vote the page's
script posts for the score of the link it was opened by
(:attr:`InteractionKind.AUTO_VOTE`). A scanner that runs scripts makes every
one of them, in any order and at any pace, so **no sequence of automatic
interactions ever confirms a vote**: their votes stay provisional (shown as
their own count) until the same client makes a gesture.

**Gestures** are what only a person at the page does: a tap on a score button
(a trusted click, :attr:`InteractionKind.SCRIPT_VOTE`), the no-script form's
button (:attr:`InteractionKind.FORM_VOTE`), a tap on another score
(:attr:`InteractionKind.SCORE_CHANGE`), and a comment. A vote is confirmed
only for a client that made at least one gesture.

**Scanner signals** — any one makes every vote of that client a SCANNER vote,
which is never counted:

- the client fetched the honeypot link (hidden from people, found by crawlers);
- the client sent a HEAD request (browsers never navigate with HEAD);
- at least ``burst_min_links`` different links of the message (or all of them,
  when the message has fewer) were fetched within ``burst_window``, by any
  clients: gateways fetch in parallel from several addresses, so every client
  taking part in the burst is marked;
- the client cast ``vote_burst_min`` votes for *different* scores within
  ``burst_window`` (it pressed every button on the page). A repeat of the same
  score (a double tap, a browser sending the POST again) is one vote: a
  person's repeat must not make them a scanner.

**Human evidence** — confirms a gesturing client's vote without waiting:

- a second action at least ``min_second_action_delay`` after the first: a
  comment, or a tap on a different score;
- a later gesture at least ``later_visit_gap`` after the first vote.

**Otherwise** a gesturing client's vote is PROVISIONAL. It becomes CONFIRMED
once the client has been quiet for ``quiet_period`` — unless its first gesture
came within ``min_human_delay`` of delivery, when only human evidence
confirms it.

**Settling**: a confirmation is given only once no interaction of the survey,
by any client, has been seen for ``settle_period``. Scanner evidence comes in
bursts; a signal that arrives within that time withdraws the confirmation
before the web service writes it, that is, before it reaches the metrics.
After that the rating stands.

The trade-off: counting a scanner's vote corrupts a touchpoint's score with
votes nobody cast (and scanners "vote" the first or every score, dragging the
mean), while never confirming anything loses the answers of the many citizens
who tap once and leave. One tap on the page, then a quiet period, confirms the
one-tap majority; a score link in an email needs that one tap on the page it
opens, because a page load is all a script-running scanner needs to make. SMS
links are not scanned by mail gateways, so ``SMS_RULES`` drops the
delivery-time rule.

Verdicts are recomputed from the whole history each time, so a signal that
arrives late still turns a vote into a scanner's; the caller publishes the
change as a new revision.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    from datetime import datetime


class InteractionKind(StrEnum):
    """What one request to the one-tap service was."""

    LINK_GET = "link-get"  # GET of a score link: shows the confirm page, casts nothing
    PAGE_GET = "page-get"  # GET of the survey page
    HEAD = "head"  # HEAD of any link
    HONEYPOT = "honeypot"  # the hidden link
    AUTO_VOTE = "auto-vote"  # POST the page's script sends by itself on load: automatic
    SCRIPT_VOTE = "script-vote"  # a tap on a score button, sent by the page's script
    FORM_VOTE = "form-vote"  # POST of the no-script form's button
    SCORE_CHANGE = "score-change"  # a tap on another score than the client's last vote
    COMMENT = "comment"  # a comment sent from the page


#: Interactions that cast or change a vote.
VOTES = frozenset(
    {
        InteractionKind.AUTO_VOTE,
        InteractionKind.SCRIPT_VOTE,
        InteractionKind.FORM_VOTE,
        InteractionKind.SCORE_CHANGE,
    }
)
#: What only a person at the page does; a page load does none of them by itself.
GESTURES = frozenset(
    {
        InteractionKind.SCRIPT_VOTE,
        InteractionKind.FORM_VOTE,
        InteractionKind.SCORE_CHANGE,
        InteractionKind.COMMENT,
    }
)
#: What any page load does, a scanner's as well as a person's.
AUTOMATIC = frozenset(InteractionKind) - GESTURES
#: Interactions that fetch one of the message's links.
LINK_HITS = frozenset(
    {
        InteractionKind.LINK_GET,
        InteractionKind.PAGE_GET,
        InteractionKind.HEAD,
        InteractionKind.HONEYPOT,
    }
)


@dataclass(frozen=True, slots=True)
class Interaction:
    """One request seen for a survey message.

    ``link_id`` names the link of the message the request came through;
    ``client`` is a fingerprint hash; ``score`` is set on votes.
    """

    kind: InteractionKind
    at: datetime
    link_id: str
    client: str
    score: int | None = None


class Verdict(StrEnum):
    """Whether a vote counts."""

    CONFIRMED = "confirmed"  # counted in the metrics
    PROVISIONAL = "provisional"  # kept, not yet counted
    SCANNER = "scanner"  # never counted
    NO_VOTE = "no-vote"  # nothing was voted (links fetched only)


class Reason(StrEnum):
    """Why a verdict was reached."""

    HONEYPOT = "honeypot-hit"
    HEAD_REQUEST = "head-request"
    LINK_BURST = "link-burst"
    VOTE_BURST = "vote-burst"
    SECOND_ACTION = "second-action"
    LATER_VISIT = "later-visit"
    QUIET_PERIOD = "quiet-period-passed"
    AWAITING_QUIET_PERIOD = "awaiting-quiet-period"
    TOO_SOON_AFTER_DELIVERY = "too-soon-after-delivery"
    NO_GESTURE = "no-gesture"  # only automatic interactions: waits for a tap on the page
    SETTLING = "settling"  # confirmed, held until the survey's links have been quiet a while
    NO_VOTE = "no-vote"


class VoteMode(StrEnum):
    """How a vote was posted, as the page says in its ``mode`` field."""

    AUTO = "auto"  # the page's script, by itself, for the score of the link it was opened by
    TAP = "tap"  # the page's script, for a trusted click on a score button
    FORM = "form"  # the no-script form's button

    @classmethod
    def parse(cls, raw: str | None) -> VoteMode:
        """Read a posted mode; anything unknown (an old page's ``script``, none) is automatic.

        Taking an unknown mode for a gesture would let any client that posts
        without it confirm a vote; taking it for automatic costs a person one
        more tap at most.
        """
        try:
            return cls(raw or "")
        except ValueError:
            return cls.AUTO


def vote_kind(mode: VoteMode, previous: int | None, score: int) -> InteractionKind:
    """Name a posted vote from how it was posted and the client's previous vote.

    An automatic vote stays automatic whatever score it carries: a scanner
    opening the email's score links one after another makes the page vote a
    new score each time, which must never read as a change of mind.
    """
    if mode is VoteMode.AUTO:
        return InteractionKind.AUTO_VOTE
    if previous is not None and previous != score:
        return InteractionKind.SCORE_CHANGE
    return InteractionKind.SCRIPT_VOTE if mode is VoteMode.TAP else InteractionKind.FORM_VOTE


@dataclass(frozen=True, slots=True)
class EvidenceRules:
    """The thresholds of the rule; the defaults suit email links.

    ``min_human_delay`` of ``None`` turns the delivery-time rule off;
    ``later_visit_gap`` of ``None`` ignores later visits; ``quiet_period`` of
    ``None`` confirms only on human evidence; ``settle_period`` of zero gives a
    confirmation as soon as the evidence is there.
    """

    burst_window: timedelta = timedelta(seconds=10)
    burst_min_links: int = 3
    head_is_scanner: bool = True
    vote_burst_min: int = 3
    min_human_delay: timedelta | None = timedelta(seconds=30)
    min_second_action_delay: timedelta = timedelta(seconds=2)
    later_visit_gap: timedelta | None = timedelta(minutes=5)
    quiet_period: timedelta | None = timedelta(minutes=10)
    settle_period: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.burst_min_links < 2:  # noqa: PLR2004 -- one link cannot make a burst
            raise ValueError("burst_min_links must be at least 2")
        if self.vote_burst_min < 2:  # noqa: PLR2004 -- one vote cannot make a burst
            raise ValueError("vote_burst_min must be at least 2")
        if self.settle_period < timedelta(0):
            raise ValueError("settle_period must not be negative")


EMAIL_RULES = EvidenceRules()
SMS_RULES = EvidenceRules(min_human_delay=None)


@dataclass(frozen=True, slots=True)
class ClientAssessment:
    """The verdict on one client's votes; ``vote`` is its latest, the one that counts.

    ``confirm_at`` is when a provisional vote confirms if nothing else happens.
    """

    client: str
    verdict: Verdict
    reasons: tuple[Reason, ...]
    vote: Interaction | None
    confirm_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one survey message.

    ``vote`` is the vote to record (the latest of the best-judged client) for
    CONFIRMED and PROVISIONAL, ``None`` otherwise. ``recheck_at`` is the
    earliest time a provisional vote would confirm: when to assess again.
    """

    verdict: Verdict
    reasons: tuple[Reason, ...]
    vote: Interaction | None
    recheck_at: datetime | None
    clients: tuple[ClientAssessment, ...]


def _burst_clients(
    hits: Sequence[Interaction], links: Collection[str], rules: EvidenceRules
) -> set[str]:
    """Clients taking part in a fetch of many different links within seconds."""
    needed = min(rules.burst_min_links, len(links))
    if needed < 2:  # noqa: PLR2004 -- a single-link message has no burst to see
        return set()
    in_message = sorted((hit for hit in hits if hit.link_id in links), key=lambda hit: hit.at)
    marked: set[str] = set()
    for index, first in enumerate(in_message):
        window = [hit for hit in in_message[index:] if hit.at - first.at <= rules.burst_window]
        if len({hit.link_id for hit in window}) >= needed:
            marked.update(hit.client for hit in window)
    return marked


def distinct_votes(votes: Iterable[Interaction]) -> list[Interaction]:
    """Drop each vote that repeats the score of the vote before it: a repeat is one vote.

    A double tap, a browser that sends the POST again, or a tap on the score
    the page already chose are the same answer given again, not more answers.
    """
    kept: list[Interaction] = []
    for vote in votes:
        if not kept or kept[-1].score != vote.score:
            kept.append(vote)
    return kept


def _vote_burst(votes: Sequence[Interaction], rules: EvidenceRules) -> bool:
    """Tell whether ``vote_burst_min`` different scores were voted within ``burst_window``.

    Different scores, not votes: a person wavering between two scores taps
    back and forth, a machine pressing every button votes every score.
    """
    kept = distinct_votes(votes)
    for index, first in enumerate(kept):
        window = {v.score for v in kept[index:] if v.at - first.at <= rules.burst_window}
        if len(window) >= rules.vote_burst_min:
            return True
    return False


def _human_evidence(
    interactions: Sequence[Interaction], votes: Sequence[Interaction], rules: EvidenceRules
) -> list[Reason]:
    first_vote = votes[0]
    found: list[Reason] = []
    delay = rules.min_second_action_delay
    changed = any(
        later.kind is InteractionKind.SCORE_CHANGE and later.at - earlier.at >= delay
        for earlier, later in itertools.pairwise(votes)
    )
    commented = any(
        item.kind is InteractionKind.COMMENT and item.at - interactions[0].at >= delay
        for item in interactions
    )
    if changed or commented:
        found.append(Reason.SECOND_ACTION)
    gap = rules.later_visit_gap
    if gap is not None and any(
        item.kind in GESTURES and item.at - first_vote.at >= gap for item in interactions
    ):
        found.append(Reason.LATER_VISIT)
    return found


def _scanner_signals(
    interactions: Sequence[Interaction],
    votes: Sequence[Interaction],
    *,
    burst: bool,
    rules: EvidenceRules,
) -> list[Reason]:
    kinds = {item.kind for item in interactions}
    signals: list[Reason] = []
    if InteractionKind.HONEYPOT in kinds:
        signals.append(Reason.HONEYPOT)
    if rules.head_is_scanner and InteractionKind.HEAD in kinds:
        signals.append(Reason.HEAD_REQUEST)
    if burst:
        signals.append(Reason.LINK_BURST)
    if _vote_burst(votes, rules):
        signals.append(Reason.VOTE_BURST)
    return signals


def _assess_client(  # noqa: PLR0911 - one early verdict per rule, in the order the docstring gives
    client: str,
    interactions: Sequence[Interaction],
    *,
    burst: bool,
    delivered_at: datetime,
    now: datetime,
    rules: EvidenceRules,
) -> ClientAssessment:
    votes = [item for item in interactions if item.kind in VOTES]
    signals = _scanner_signals(interactions, votes, burst=burst, rules=rules)
    if not votes:
        verdict = Verdict.SCANNER if signals else Verdict.NO_VOTE
        return ClientAssessment(client, verdict, tuple(signals) or (Reason.NO_VOTE,), None)
    latest = votes[-1]
    if signals:
        return ClientAssessment(client, Verdict.SCANNER, tuple(signals), latest)
    gestures = [item for item in interactions if item.kind in GESTURES]
    if not gestures:  # page loads only: a scanner's script makes all of these
        return ClientAssessment(client, Verdict.PROVISIONAL, (Reason.NO_GESTURE,), latest)
    evidence = _human_evidence(interactions, votes, rules)
    if evidence:
        return ClientAssessment(client, Verdict.CONFIRMED, tuple(evidence), latest)
    first = gestures[0].at
    if rules.min_human_delay is not None and first - delivered_at < rules.min_human_delay:
        return ClientAssessment(
            client, Verdict.PROVISIONAL, (Reason.TOO_SOON_AFTER_DELIVERY,), latest
        )
    confirm_at = None if rules.quiet_period is None else interactions[-1].at + rules.quiet_period
    if confirm_at is not None and now >= confirm_at:
        return ClientAssessment(client, Verdict.CONFIRMED, (Reason.QUIET_PERIOD,), latest)
    return ClientAssessment(
        client, Verdict.PROVISIONAL, (Reason.AWAITING_QUIET_PERIOD,), latest, confirm_at
    )


def _unique(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(dict.fromkeys(reasons))


def assess(
    interactions: Iterable[Interaction],
    *,
    delivered_at: datetime,
    message_links: Collection[str],
    now: datetime,
    rules: EvidenceRules = EMAIL_RULES,
) -> Assessment:
    """Judge the votes of one survey message from everything seen for it up to ``now``.

    The order of ``interactions`` does not matter; ones after ``now`` are ignored.
    """
    seen = sorted(
        (item for item in interactions if item.at <= now),
        key=lambda item: (item.at, item.client, item.kind.value, item.link_id),
    )
    burst = _burst_clients([item for item in seen if item.kind in LINK_HITS], message_links, rules)
    by_client: dict[str, list[Interaction]] = {}
    for item in seen:
        by_client.setdefault(item.client, []).append(item)
    clients = tuple(
        _assess_client(
            client,
            items,
            burst=client in burst,
            delivered_at=delivered_at,
            now=now,
            rules=rules,
        )
        for client, items in sorted(by_client.items())
    )
    settled_at = seen[-1].at + rules.settle_period if seen else now
    for verdict in (Verdict.CONFIRMED, Verdict.PROVISIONAL):
        chosen = [client for client in clients if client.verdict is verdict]
        if chosen:
            best = max(chosen, key=lambda client: client.vote.at if client.vote else now)
            waits = [client.confirm_at for client in chosen if client.confirm_at is not None]
            if verdict is Verdict.CONFIRMED and now < settled_at:
                # Held: scanner evidence arriving now still withdraws it.
                return Assessment(
                    verdict=Verdict.PROVISIONAL,
                    reasons=(Reason.SETTLING, *best.reasons),
                    vote=best.vote,
                    recheck_at=settled_at,
                    clients=clients,
                )
            return Assessment(
                verdict=verdict,
                reasons=best.reasons,
                vote=best.vote,
                recheck_at=min(waits) if verdict is Verdict.PROVISIONAL and waits else None,
                clients=clients,
            )
    scanners = [client for client in clients if client.verdict is Verdict.SCANNER]
    if any(client.vote is not None for client in scanners):
        reasons = _unique(reason for client in scanners for reason in client.reasons)
        return Assessment(Verdict.SCANNER, reasons, None, None, clients)
    return Assessment(Verdict.NO_VOTE, (Reason.NO_VOTE,), None, None, clients)
