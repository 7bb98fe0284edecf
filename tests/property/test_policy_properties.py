"""Properties of the policy and send times over generated contacts, clocks and histories."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.policy import CitizenHistory, Schedule, decide, is_sampled
from engine.sendtime import in_quiet_hours, is_blocked_day, send_time
from schemas.config import HolidayHandling, PolicyConfig, SendWindow, TouchpointConfig
from schemas.contacts import ContactCompleted

CITIZEN_KEY = "fedcba9876543210fedcba9876543210"
ZONES = ["Europe/Helsinki", "Europe/Stockholm", "America/New_York", "Australia/Sydney"]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
FINNISH_HOLIDAYS = PolicyConfig().holiday_calendar()

instants = st.integers(min_value=0, max_value=3 * 365 * 24 * 60).map(
    lambda minutes: BASE + timedelta(minutes=minutes)
)
# Nights of the DST changes in Europe (last Sundays of March and October, 01:00 UTC).
DST_CHANGES = [
    datetime(2024, 3, 31, 1, tzinfo=UTC),
    datetime(2024, 10, 27, 1, tzinfo=UTC),
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 10, 26, 1, tzinfo=UTC),
]
around_dst = st.builds(
    lambda change, minutes: change + timedelta(minutes=minutes),
    st.sampled_from(DST_CHANGES),
    st.integers(-30 * 60, 30 * 60),
)
instants = instants | around_dst
clock_times = st.times().map(lambda value: value.replace(microsecond=0))
handling: st.SearchStrategy[HolidayHandling] = st.sampled_from(
    ["quiet-all-day", "next-working-day", "ignore"]
)


@st.composite
def policies(draw: st.DrawFn) -> PolicyConfig:
    start = draw(clock_times)
    # Keep at least an hour outside quiet hours, so a send window can always open.
    length = draw(st.integers(min_value=0, max_value=22 * 60))
    end = (datetime.combine(BASE.date(), start) + timedelta(minutes=length)).time()
    return PolicyConfig(
        quiet_hours_start=start,
        quiet_hours_end=end,
        time_zone=draw(st.sampled_from(ZONES)),
        holiday_handling=draw(handling),
    )


@st.composite
def touchpoints(draw: st.DrawFn) -> TouchpointConfig:
    window = None
    if draw(st.booleans()):
        window = SendWindow(days_after=draw(st.integers(0, 3)), not_before=draw(clock_times))
    return TouchpointConfig(
        send_delay=timedelta(minutes=draw(st.integers(0, 3 * 24 * 60))),
        send_window=window,
        sampling_rate=draw(st.floats(0.0, 1.0)),
    )


def _window_fits(policy: PolicyConfig, touchpoint: TouchpointConfig) -> bool:
    """Tell whether configuration would accept this pair (its window can open)."""
    window = touchpoint.send_window
    return window is None or policy.window_can_open(window)


@settings(max_examples=400, deadline=None)
@given(
    ended=instants,
    lateness=st.integers(0, 5 * 24 * 60),
    policy=policies(),
    touchpoint=touchpoints(),
)
def test_send_time_is_never_quiet_never_past_and_never_early(
    ended: datetime,
    lateness: int,
    policy: PolicyConfig,
    touchpoint: TouchpointConfig,
) -> None:
    """Whatever the clock, zone or DST change, nobody is texted in quiet hours or on a holiday."""
    assume(_window_fits(policy, touchpoint))
    now = ended + timedelta(minutes=lateness)
    sent = send_time(ended, touchpoint, policy, now, is_holiday=FINNISH_HOLIDAYS)
    local = sent.astimezone(ZoneInfo(policy.time_zone))
    assert sent.tzinfo is UTC
    assert sent >= now
    assert sent >= ended + touchpoint.send_delay
    assert not in_quiet_hours(local.time(), policy)
    assert not is_blocked_day(local.date(), policy, FINNISH_HOLIDAYS)
    if touchpoint.send_window is not None:
        assert local.time() >= touchpoint.send_window.not_before


@settings(max_examples=20, deadline=None)
@given(rate=st.floats(0.05, 0.95), prefix=st.text("abcxyz-", min_size=1, max_size=6))
def test_sampling_rate_is_respected_over_many_ids(rate: float, prefix: str) -> None:
    """A configured 30 % must give about 30 % of contacts, whatever their ids look like."""
    total = 20_000
    hits = sum(is_sampled("/crm/test", f"{prefix}{number}", rate) for number in range(total))
    assert abs(hits / total - rate) < 0.02


def _contact(contact_id: str, ended: datetime, service: str, **citizen: Any) -> ContactCompleted:
    return ContactCompleted.model_validate(
        {
            "specversion": "1.0",
            "id": f"evt-{contact_id}",
            "source": "/crm/test",
            "type": "fi.palaute.contact.completed.v1",
            "time": ended,
            "data": {
                "contact": {"id": contact_id, "ended_at": ended},
                "citizen": {
                    "phone": "+358401234567",
                    "email": "maija@example.com",
                    **citizen,
                },
                "touchpoint": {
                    "id": f"tp-{service}",
                    "name": "Palvelupiste",
                    "channel": "phone",
                    "service": service,
                },
            },
        },
        context={"now": ended},
    )


contacts = st.builds(
    _contact,
    contact_id=st.from_regex(r"c-[a-z0-9]{1,12}", fullmatch=True),
    ended=instants,
    service=st.sampled_from(["a", "b", "c"]),
    consent=st.fixed_dictionaries({"sms": st.booleans(), "email": st.booleans()}),
    non_disclosure=st.booleans(),
    age=st.none() | st.integers(0, 100),
)


@settings(max_examples=200, deadline=None)
@given(event=contacts, delay=st.integers(0, 48 * 60), policy=policies(), tp=touchpoints())
def test_the_same_input_gives_the_same_decision(
    event: ContactCompleted, delay: int, policy: PolicyConfig, tp: TouchpointConfig
) -> None:
    """Replays and the end-to-end oracle rely on decide being a pure function."""
    assume(_window_fits(policy, tp))
    now = event.data.contact.ended_at + timedelta(minutes=delay)

    def once() -> object:
        return decide(
            event,
            CitizenHistory(),
            tp,
            policy,
            now,
            citizen_key=CITIZEN_KEY,
            is_holiday=FINNISH_HOLIDAYS,
        )

    assert once() == once()


@settings(max_examples=100, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.integers(0, 200 * 24 * 60), st.sampled_from(["a", "b", "c"])),
        min_size=1,
        max_size=40,
    ),
    cap=st.integers(1, 3),
)
def test_a_citizen_never_gets_more_surveys_than_the_cap_allows(
    arrivals: list[tuple[int, str]], cap: int
) -> None:
    """Over any stream of contacts, surveys that stand are never more than `cap` per window."""
    policy = PolicyConfig(frequency_cap=cap)
    touchpoint = TouchpointConfig()
    history = CitizenHistory()
    start = datetime(2025, 1, 7, 9, tzinfo=UTC)
    decisions = 0
    for number, (minutes, service) in enumerate(sorted(arrivals)):
        ended = start + timedelta(minutes=minutes)
        event = _contact(f"c-{number}", ended, service, consent={"sms": True})
        decision = decide(
            event,
            history,
            touchpoint,
            policy,
            ended + timedelta(minutes=1),
            citizen_key=CITIZEN_KEY,
            is_holiday=FINNISH_HOLIDAYS,
        )
        decisions += 1
        history = decision.history
        if isinstance(decision, Schedule):
            assert all(record.survey_id != decision.survey_id for record in decision.superseded)
    assert decisions == len(arrivals)
    standing = sorted(record.send_at for record in history.surveys)
    window = policy.frequency_cap_window
    for index, send_at in enumerate(standing):
        within = [other for other in standing[index:] if other - send_at < window]
        assert len(within) <= cap


def test_quiet_time_check_ignores_tzinfo_and_fold() -> None:
    """Local times taken from aware datetimes carry no tzinfo; the check must agree."""
    policy = PolicyConfig()
    assert in_quiet_hours(time(22, 0, fold=1), policy)
