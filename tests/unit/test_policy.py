"""The survey policy: every skip reason, channel fallback, supersession, episodes and caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.policy import (
    CitizenHistory,
    ContactIdentity,
    Schedule,
    Skip,
    SurveyRecord,
    age_for_policy,
    decide,
    is_sampled,
    survey_id_for,
)
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import PolicyConfig, TouchpointConfig
from schemas.contacts import ContactCompleted, ContactContext, TouchpointChannel
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped

HELSINKI = ZoneInfo("Europe/Helsinki")
ENDED = datetime(2025, 11, 12, 10, 0, tzinfo=HELSINKI)  # an ordinary Wednesday
NOW = ENDED + timedelta(minutes=2)
CITIZEN_KEY = "0123456789abcdef0123456789abcdef"
MOBILE = "+358401234567"
LANDLINE = "+35891234567"
SOURCE = "/crm/test"
POLICY = PolicyConfig()
TOUCHPOINT = TouchpointConfig()
FINNISH_HOLIDAYS = POLICY.holiday_calendar()


def contact(
    contact_id: str = "c-1",
    ended: datetime = ENDED,
    *,
    touchpoint: str = "tp-a",
    service: str = "Asumisen tuet",
    source: str = SOURCE,
    event_id: str | None = None,
    **citizen: Any,
) -> ContactCompleted:
    consent = {
        "sms": citizen.pop("sms", True),
        "email": citizen.pop("email_consent", True),
        "opted_out": citizen.pop("opted_out", False),
    }
    person: dict[str, Any] = {"phone": MOBILE, "email": "maija@example.com", "birth_year": 1984}
    person.update(citizen)
    person = {key: value for key, value in person.items() if value is not None}
    return ContactCompleted.model_validate(
        {
            "specversion": "1.0",
            "id": event_id or f"evt-{contact_id}",
            "source": source,
            "type": "fi.palaute.contact.completed.v1",
            "time": ended,
            "data": {
                "contact": {"id": contact_id, "ended_at": ended},
                "citizen": {**person, "consent": consent},
                "touchpoint": {
                    "id": touchpoint,
                    "name": "Palvelupiste",
                    "channel": "phone",
                    "service": service,
                },
            },
        }
    )


def run(
    event: ContactCompleted,
    history: CitizenHistory | None = None,
    touchpoint: TouchpointConfig = TOUCHPOINT,
    policy: PolicyConfig = POLICY,
    now: datetime = NOW,
) -> Schedule | Skip:
    return decide(
        event,
        history or CitizenHistory(),
        touchpoint,
        policy,
        now,
        citizen_key=CITIZEN_KEY,
        is_holiday=FINNISH_HOLIDAYS,
    )


def sent(
    days_ago: int, *, service: str = "Muu palvelu", touchpoint: str = "tp-x", contact_id: str = ""
) -> SurveyRecord:
    at = NOW - timedelta(days=days_ago)
    contact_id = contact_id or f"old-{days_ago}-{service}"
    return SurveyRecord(
        survey_id=survey_id_for(SOURCE, contact_id),
        contact_id=contact_id,
        touchpoint_id=touchpoint,
        service=service,
        contact_ended_at=at - timedelta(minutes=10),
        send_at=at,
        sent=True,
    )


def newer_pending() -> SurveyRecord:
    return SurveyRecord(
        survey_id=survey_id_for(SOURCE, "c-newer"),
        contact_id="c-newer",
        touchpoint_id="tp-b",
        service="Muu palvelu",
        contact_ended_at=ENDED + timedelta(minutes=1),
        send_at=NOW + timedelta(minutes=9),
    )


SKIP_CASES: list[tuple[str, dict[str, Any], SkipReason]] = [
    (
        "repeated contact",
        {"history": CitizenHistory(legacy_contact_ids=("c-1",))},
        SkipReason.DUPLICATE,
    ),
    ("opted out in the contact", {"citizen": {"opted_out": True}}, SkipReason.OPTED_OUT),
    ("opted out earlier", {"history": CitizenHistory(opted_out=True)}, SkipReason.OPTED_OUT),
    (
        "no consent at all",
        {"citizen": {"sms": False, "email_consent": False}},
        SkipReason.NO_CONSENT,
    ),
    (
        "only consent for a channel the touchpoint does not use",
        {
            "citizen": {"email_consent": False},
            "touchpoint": TouchpointConfig(channel_preference=[SurveyChannel.EMAIL]),
        },
        SkipReason.NO_CONSENT,
    ),
    (
        "sms consent but a landline, no email consent",
        {"citizen": {"phone": LANDLINE, "email_consent": False}},
        SkipReason.NO_CHANNEL,
    ),
    (
        "email consent but no address",
        {"citizen": {"sms": False, "email": None}},
        SkipReason.NO_CHANNEL,
    ),
    ("turvakielto", {"citizen": {"non_disclosure": True}}, SkipReason.NON_DISCLOSURE),
    ("age 17", {"citizen": {"age": 17}}, SkipReason.UNDER_AGE),
    (
        "born 2007, counted as 17 all of 2025",
        {"citizen": {"birth_year": 2007}},
        SkipReason.UNDER_AGE,
    ),
    (
        "age unknown and the policy asks only known adults",
        {"citizen": {"birth_year": None}, "policy": PolicyConfig(survey_unknown_age=False)},
        SkipReason.UNDER_AGE,
    ),
    (
        "sensitive touchpoint",
        {"touchpoint": TouchpointConfig(sensitive=True)},
        SkipReason.SENSITIVE_TOUCHPOINT,
    ),
    (
        "another survey 10 days ago",
        {"history": CitizenHistory(surveys=(sent(10),))},
        SkipReason.FREQUENCY_CAP,
    ),
    (
        "same service surveyed 10 days ago, cap allows more",
        {
            "history": CitizenHistory(surveys=(sent(10, service="Asumisen tuet"),)),
            "policy": PolicyConfig(frequency_cap=5),
        },
        SkipReason.EPISODE,
    ),
    (
        "not in the sample",
        {"touchpoint": TouchpointConfig(sampling_rate=0.0)},
        SkipReason.NOT_SAMPLED,
    ),
    ("arrived 25 h after the contact", {"now": ENDED + timedelta(hours=25)}, SkipReason.TOO_OLD),
    (
        "a newer contact is already waiting",
        {"history": CitizenHistory(surveys=(newer_pending(),))},
        SkipReason.SUPERSEDED,
    ),
]


@pytest.mark.parametrize(
    ("case", "setup", "reason"), SKIP_CASES, ids=[case for case, _, _ in SKIP_CASES]
)
def test_each_rule_skips_with_its_reason(
    case: str, setup: dict[str, Any], reason: SkipReason
) -> None:
    """Every skip is accounted for by one reason, so operators can see why feedback is missing."""
    event = contact(**setup.get("citizen", {}))
    decision = run(
        event,
        history=setup.get("history"),
        touchpoint=setup.get("touchpoint", TOUCHPOINT),
        policy=setup.get("policy", POLICY),
        now=setup.get("now", NOW),
    )
    assert isinstance(decision, Skip), case
    assert decision.reason is reason
    assert MOBILE not in decision.detail
    assert "maija" not in decision.detail


def test_every_skip_reason_is_reachable() -> None:
    """A reason no rule can produce is a rule that silently does nothing."""
    assert {reason for _, _, reason in SKIP_CASES} == set(SkipReason)


def test_an_eligible_contact_is_scheduled_by_sms_after_the_delay() -> None:
    """The plain path: consenting adult with a mobile number, ordinary weekday."""
    decision = run(contact())
    assert isinstance(decision, Schedule)
    assert decision.channel is SurveyChannel.SMS
    assert decision.language is Language.FI
    assert decision.scale is Scale.CSAT_5
    assert decision.send_at == ENDED + timedelta(minutes=10)
    assert decision.expires_at == decision.send_at + TOUCHPOINT.expiry
    assert decision.survey_id == survey_id_for(SOURCE, "c-1")
    assert decision.superseded == ()
    assert decision.history.has_decided(ContactIdentity(SOURCE, "evt-c-1", "c-1"))
    assert [record.contact_id for record in decision.history.surveys] == ["c-1"]


def test_adult_by_birth_year_is_surveyed() -> None:
    """Born 2006 is at least 18 throughout 2025."""
    assert isinstance(run(contact(birth_year=2006)), Schedule)
    assert age_for_policy(contact(birth_year=2006).data.citizen, NOW, POLICY) == 18


@pytest.mark.parametrize(
    ("citizen", "preference", "channel"),
    [
        ({}, [SurveyChannel.SMS, SurveyChannel.EMAIL], SurveyChannel.SMS),
        ({"phone": LANDLINE}, [SurveyChannel.SMS, SurveyChannel.EMAIL], SurveyChannel.EMAIL),
        ({"sms": False}, [SurveyChannel.SMS, SurveyChannel.EMAIL], SurveyChannel.EMAIL),
        ({"phone": None}, [SurveyChannel.SMS, SurveyChannel.EMAIL], SurveyChannel.EMAIL),
        ({}, [SurveyChannel.EMAIL, SurveyChannel.SMS], SurveyChannel.EMAIL),
        ({"email_consent": False}, [SurveyChannel.EMAIL, SurveyChannel.SMS], SurveyChannel.SMS),
    ],
)
def test_channel_falls_back_in_the_touchpoints_order(
    citizen: dict[str, Any], preference: list[SurveyChannel], channel: SurveyChannel
) -> None:
    """A landline never receives a text; email is the fallback, not a lost survey."""
    decision = run(contact(**citizen), touchpoint=TouchpointConfig(channel_preference=preference))
    assert isinstance(decision, Schedule)
    assert decision.channel is channel


def test_language_without_a_question_falls_back_to_finnish() -> None:
    """Sámi is optional per touchpoint; the citizen still gets asked."""
    decision = run(contact(language="se"))
    assert isinstance(decision, Schedule)
    assert decision.language is Language.FI
    swedish = run(contact(language="sv"))
    assert isinstance(swedish, Schedule)
    assert swedish.language is Language.SV


def test_a_newer_contact_supersedes_the_pending_survey() -> None:
    """Two contacts one evening: ask about the latest, and call off the earlier survey."""
    evening = datetime(2025, 11, 12, 20, 55, tzinfo=HELSINKI)
    first = run(contact("c-1", evening), now=evening)
    assert isinstance(first, Schedule)
    assert first.send_at == datetime(2025, 11, 13, 8, tzinfo=HELSINKI)

    later = evening + timedelta(minutes=40)
    second = run(
        contact("c-2", later, touchpoint="tp-b", service="Muu palvelu"),
        history=first.history,
        now=later,
    )
    assert isinstance(second, Schedule)
    assert [record.contact_id for record in second.superseded] == ["c-1"]
    assert [record.contact_id for record in second.history.surveys] == ["c-2"]
    (cancel,) = second.superseded_events(later)
    assert isinstance(cancel, SurveySkipped)
    assert cancel.reason is SkipReason.SUPERSEDED
    assert cancel.survey_id == first.survey_id


def test_without_supersession_the_pending_survey_counts_against_the_cap() -> None:
    """Turning supersession off must not let a citizen get two surveys in one night."""
    policy = PolicyConfig(supersede_pending=False)
    evening = datetime(2025, 11, 12, 20, 55, tzinfo=HELSINKI)
    first = run(contact("c-1", evening), policy=policy, now=evening)
    assert isinstance(first, Schedule)
    later = evening + timedelta(minutes=40)
    second = run(
        contact("c-2", later, service="Muu palvelu"), first.history, policy=policy, now=later
    )
    assert isinstance(second, Skip)
    assert second.reason is SkipReason.FREQUENCY_CAP


def test_a_skipped_newer_contact_leaves_the_pending_survey_alone() -> None:
    """Supersession replaces a survey only with another survey, never with nothing."""
    evening = datetime(2025, 11, 12, 20, 55, tzinfo=HELSINKI)
    first = run(contact("c-1", evening), now=evening)
    assert isinstance(first, Schedule)
    later = evening + timedelta(minutes=40)
    second = run(contact("c-2", later), first.history, TouchpointConfig(sensitive=True), now=later)
    assert isinstance(second, Skip)
    assert [record.contact_id for record in second.history.surveys] == ["c-1"]


@pytest.mark.parametrize(
    ("days_ago", "scope", "touchpoint", "reason"),
    [
        (10, "service", "tp-x", SkipReason.EPISODE),
        (29, "service", "tp-x", SkipReason.EPISODE),
        (31, "service", "tp-x", None),
        (10, "touchpoint", "tp-x", None),
        (10, "touchpoint", "tp-a", SkipReason.EPISODE),
    ],
)
def test_episode_rule(
    days_ago: int, scope: str, touchpoint: str, reason: SkipReason | None
) -> None:
    """A follow-up visit about the same matter is not a new experience to ask about."""
    policy = PolicyConfig.model_validate({"frequency_cap": 10, "episode_scope": scope})
    history = CitizenHistory(
        surveys=(sent(days_ago, service="Asumisen tuet", touchpoint=touchpoint),)
    )
    decision = run(contact(), history, policy=policy)
    assert (decision.reason if isinstance(decision, Skip) else None) is reason


@pytest.mark.parametrize(
    ("history_days", "cap", "scheduled"),
    [
        ((29,), 1, False),
        ((31,), 1, True),
        ((5,), 2, True),
        ((5, 20), 2, False),
        ((5, 40), 2, True),
    ],
)
def test_frequency_cap_counts_surveys_across_touchpoints(
    history_days: tuple[int, ...], cap: int, scheduled: bool
) -> None:
    """At most `cap` surveys per 30 days, whatever the touchpoints were."""
    history = CitizenHistory(
        surveys=tuple(
            sent(days, service=f"s{days}", touchpoint=f"t{days}") for days in history_days
        )
    )
    decision = run(
        contact(), history, policy=PolicyConfig(frequency_cap=cap, episode_window=timedelta(0))
    )
    assert isinstance(decision, Schedule) is scheduled


def test_a_failed_survey_removed_from_the_history_no_longer_counts() -> None:
    """A text that never arrived must not block the citizen's next survey for 30 days."""
    record = sent(5)
    history = CitizenHistory(surveys=(record,))
    assert isinstance(run(contact(), history), Skip)
    assert isinstance(run(contact(), history.without_survey(record.survey_id)), Schedule)


def test_replay_is_a_duplicate_with_the_same_survey_id_and_nothing_to_publish() -> None:
    """Re-delivery after a crash must neither send twice nor cancel the first decision."""
    first = run(contact())
    assert isinstance(first, Schedule)
    again = run(contact(), first.history)
    assert isinstance(again, Skip)
    assert again.reason is SkipReason.DUPLICATE
    assert again.survey_id == first.survey_id
    assert again.skipped_event(NOW) is None
    assert again.history == first.history


def test_the_same_input_gives_the_same_decision() -> None:
    """The policy is the oracle of the end-to-end tests; it must be a function."""
    history = CitizenHistory(surveys=(sent(40),))
    assert run(contact(), history) == run(contact(), history)


def test_decisions_convert_to_valid_lifecycle_events() -> None:
    """The shell publishes these as they are; they must pass the contracts."""
    scheduled = run(contact())
    assert isinstance(scheduled, Schedule)
    event = scheduled.scheduled_event(NOW)
    assert isinstance(event, SurveyScheduled)
    assert event.contact_ended_at == ENDED
    assert event.touchpoint_channel is TouchpointChannel.PHONE
    assert event.service == "Asumisen tuet"
    skipped = run(contact(non_disclosure=True))
    assert isinstance(skipped, Skip)
    skipped_event = skipped.skipped_event(NOW)
    assert skipped_event is not None
    assert skipped_event.reason is SkipReason.NON_DISCLOSURE


def test_history_stays_bounded() -> None:
    """Per-citizen state lives in a table for years; it must not grow without limit."""
    policy = PolicyConfig(remembered_contacts=3)
    history = CitizenHistory(surveys=(sent(90),))
    for number in range(5):
        decision = run(contact(f"c-{number}", non_disclosure=True), history, policy=policy)
        history = decision.history
    kept = [ContactIdentity(SOURCE, f"evt-c-{n}", f"c-{n}") for n in (2, 3, 4)]
    assert history.event_prints == tuple(identity.event_print for identity in kept)
    assert history.contact_prints == tuple(identity.contact_print for identity in kept)
    assert history.surveys == ()


def test_sent_and_opt_out_updates_are_remembered() -> None:
    """Outcomes reported later by the dispatcher and the responses feed the next decision."""
    first = run(contact())
    assert isinstance(first, Schedule)
    history = first.history.with_sent(first.survey_id)
    assert history.surveys[0].sent
    assert not history.surveys[0].pending(NOW)
    opted = run(
        contact("c-9", service="Muu"),
        history.with_opt_out(),
        policy=PolicyConfig(frequency_cap=9, episode_window=timedelta(0)),
    )
    assert isinstance(opted, Skip)
    assert opted.reason is SkipReason.OPTED_OUT


def test_quiet_hours_from_the_policy_reach_the_schedule() -> None:
    """The decision carries the send time the dispatcher will honour."""
    policy = PolicyConfig(quiet_hours_start=time(9), quiet_hours_end=time(11))
    decision = run(contact(), policy=policy)
    assert isinstance(decision, Schedule)
    assert decision.send_at == datetime(2025, 11, 12, 11, tzinfo=HELSINKI)


def test_survey_id_and_sampling_use_a_stable_hash() -> None:
    """Python's hash() changes per process; replays on another worker must agree."""
    assert survey_id_for(SOURCE, "c-1") == "sv-igeagifeogkbdjnflabengbfafcoeekb"
    assert survey_id_for(SOURCE, "c-1") != survey_id_for(SOURCE, "c-2")
    assert is_sampled(SOURCE, "c-1", 1.0)
    assert not is_sampled(SOURCE, "c-1", 0.0)
    assert replace(newer_pending(), sent=True).pending(NOW) is False


def _simulate(events: list[tuple[str, ContactCompleted]]) -> dict[str, dict[str, int]]:
    histories: dict[str, CitizenHistory] = {}
    surveys: dict[str, dict[str, SurveyChannel]] = {}
    for citizen, event in events:
        now = event.data.contact.ended_at + timedelta(minutes=1)
        decision = run(event, histories.get(citizen), now=now)
        histories[citizen] = decision.history
        if isinstance(decision, Schedule):
            by_citizen = surveys.setdefault(citizen, {})
            for record in decision.superseded:
                by_citizen.pop(record.survey_id)
            by_citizen[decision.survey_id] = decision.channel
    return {
        citizen: {
            channel.value: sum(1 for c in by_survey.values() if c is channel)
            for channel in SurveyChannel
        }
        for citizen, by_survey in surveys.items()
    }


def test_two_thousand_contacts_replay_to_the_same_counts_within_the_rules() -> None:
    """The end-to-end test re-runs the policy as its oracle; a replay must agree exactly."""
    events: list[tuple[str, ContactCompleted]] = []
    start = datetime(2025, 1, 2, 9, tzinfo=HELSINKI)
    for number in range(2000):
        citizen = f"citizen-{number % 100}"
        kind = number % 100
        events.append(
            (
                citizen,
                contact(
                    f"c-{number}",
                    start + timedelta(hours=number * 2),
                    touchpoint=f"tp-{number % 10}",
                    service=f"service-{number % 10}",
                    phone=LANDLINE if kind % 7 == 0 else MOBILE,
                    opted_out=kind % 11 == 0,
                    non_disclosure=kind % 13 == 0,
                    sms=kind % 5 != 0,
                ),
            )
        )
    counts = _simulate(events)
    assert counts == _simulate(events)
    for citizen, by_channel in counts.items():
        kind = int(citizen.rsplit("-", 1)[1])
        assert kind % 11 != 0  # opted out: nothing
        assert kind % 13 != 0  # turvakielto: nothing
        if kind % 7 == 0 or kind % 5 == 0:
            assert by_channel["sms"] == 0  # landline or no SMS consent: email only
        # 2,000 contacts two hours apart span 167 days: at most one survey per 30 days.
        assert sum(by_channel.values()) <= 6
    assert sum(sum(by_channel.values()) for by_channel in counts.values()) > 0


@pytest.mark.parametrize("channel", [SurveyChannel.SMS, SurveyChannel.EMAIL])
def test_vault_record_keeps_only_the_chosen_channels_detail(channel: SurveyChannel) -> None:
    """What is not stored cannot leak: an SMS survey's vault record holds no address."""
    event = contact()
    decision = run(event, touchpoint=TouchpointConfig(channel_preference=[channel]))
    assert isinstance(decision, Schedule)
    details = decision.contact_details(event.data.citizen, NOW)
    assert (details.survey_id, details.citizen_key) == (decision.survey_id, CITIZEN_KEY)
    expected = (MOBILE, None) if channel is SurveyChannel.SMS else (None, "maija@example.com")
    assert (details.phone, details.email) == expected


def test_old_format_ids_give_way_to_new_ones_within_the_bound() -> None:
    """An upgraded history must stay within remembered_contacts too, forgetting the oldest."""
    policy = PolicyConfig(remembered_contacts=3)
    history = CitizenHistory(legacy_contact_ids=("old-1", "old-2", "old-3"))
    first = run(contact("c-1", non_disclosure=True), history, policy=policy).history
    assert first.legacy_contact_ids == ("old-2", "old-3")
    assert first.has_decided(ContactIdentity("/elsewhere", "any", "old-2"))
    assert not first.has_decided(ContactIdentity("/elsewhere", "any", "old-1"))
    third = run(contact("c-3", non_disclosure=True), first, policy=policy).history
    third = run(contact("c-4", non_disclosure=True), third, policy=policy).history
    assert third.legacy_contact_ids == ()
    assert len(third.event_prints) == len(third.contact_prints) == 3


def test_the_contacts_context_reaches_the_scheduled_survey() -> None:
    """Team, case type and queue wait feed the breakdowns; the survey carries them on."""
    event = contact()
    context = ContactContext(team="Neuvonta A", case_type="asumistuki", queue_wait_seconds=95)
    data = event.data.model_copy(
        update={"contact": event.data.contact.model_copy(update={"context": context})}
    )
    event = event.model_copy(update={"data": data})
    decision = run(event)
    assert isinstance(decision, Schedule)
    scheduled = decision.scheduled_event(NOW)
    assert (scheduled.team, scheduled.case_type, scheduled.queue_wait_seconds) == (
        "Neuvonta A",
        "asumistuki",
        95,
    )
    plain = run(contact())
    assert isinstance(plain, Schedule)
    assert plain.scheduled_event(NOW).team is None
