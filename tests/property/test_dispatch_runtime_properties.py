"""The scheduler on the in-memory runtime, with a crash at any step: never a message twice.

Hypothesis schedules a few surveys (due now or soon, with or without a
reminder, some superseded or answered before they go out), scripts what the
provider answers to each send (accepted, a transient error, a refusal, an
opt-out at the provider, an outcome nobody knows), and picks crashes at any
step of any stage's checkpoint, the provider call included. The clock then
runs past every survey's expiry. Whatever the crashes: no survey's message
is handed to the provider twice (nor its reminder), every survey ends in
exactly one recorded outcome, and a survey recorded as sent was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.lifecycle import OUTCOME_UNKNOWN, Accepted, ProviderOutcome, Refused, Transient, Unknown
from streams.runtime.memory import STEPS
from streams.stages.dispatch import ForwardDetails, ScheduleSurveys
from tests.behaviour.conftest import MEMORY_START, SCHEDULING
from tests.behaviour.scheduling_harness import MemoryScheduling
from tests.integration.dispatch_harness import config_text

if TYPE_CHECKING:
    from pathlib import Path

STAGES = (ScheduleSurveys.name, ForwardDetails.name, "surveys-reader", "responses-reader")
OUTCOMES: list[ProviderOutcome] = [
    Accepted("SM1", 1),
    Transient("503"),
    Refused("invalid recipient number", "21211"),
    Refused("recipient has unsubscribed", "21610", opted_out=True),
    Unknown("timeout"),
]
EXPIRES = timedelta(minutes=20)


def _config(directory: Path) -> Path:
    path = directory / "palaute.toml"
    if not path.exists():
        extra = SCHEDULING + 'retry_base = "2s"\nretry_cap = "10s"\n'
        text = config_text(
            "127.0.0.1:9",
            "",
            directory / "data",
            sim_url="http://127.0.0.1:9",
            smtp_port=9,
            extra=extra,
        )
        path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Survey:
    """One generated survey: when it is due, its reminder, what happens to it, what Twilio says."""

    send_in: int
    reminder_in: int | None
    skip: bool
    answer: str | None
    script: tuple[int, ...]


surveys = st.lists(
    st.builds(
        Survey,
        send_in=st.integers(0, 60),
        reminder_in=st.none() | st.integers(30, 300),
        skip=st.booleans(),
        answer=st.sampled_from([None, "rating", "opt-out"]),
        script=st.lists(st.sampled_from(range(len(OUTCOMES))), max_size=3).map(tuple),
    ),
    min_size=1,
    max_size=4,
)
#: The scheduler is where a crash can double a send: it is chosen most often.
crashes = st.lists(
    st.tuples(
        st.sampled_from((*[ScheduleSurveys.name] * 3, *STAGES)),
        st.sampled_from(STEPS),
        st.integers(1, 3),
    ),
    max_size=4,
)


class _Crashes:
    """Crash each chosen stage at the n-th time it reaches the chosen step, once."""

    def __init__(self, plan: list[tuple[str, str, int]]) -> None:
        self.plan = {(stage, step): n for stage, step, n in plan}
        self.seen: dict[tuple[str, str], int] = {}

    def __call__(self, stage: str, step: str) -> bool:
        key = (stage, step)
        if key not in self.plan:
            return False
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key] == self.plan[key]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=surveys, crash_plan=crashes)
@example(
    plan=[Survey(send_in=0, reminder_in=None, skip=False, answer=None, script=())],
    crash_plan=[(ScheduleSurveys.name, "produced", 2)],
)
async def test_a_crash_at_any_step_never_sends_twice_and_every_survey_ends(
    tmp_path: Path, plan: list[Survey], crash_plan: list[tuple[str, str, int]]
) -> None:
    """At most one message (and one reminder) per survey; exactly one ending each."""
    harness = MemoryScheduling(_config(tmp_path), MEMORY_START, crash=_Crashes(crash_plan))
    start = harness.now()
    ids = [f"s-{number}" for number in range(len(plan))]
    for survey_id, survey in zip(ids, plan, strict=True):
        send_at = start + timedelta(seconds=survey.send_in)
        reminder_at = (
            None if survey.reminder_in is None else send_at + timedelta(seconds=survey.reminder_in)
        )
        harness.senders.script[survey_id] = [OUTCOMES[i] for i in survey.script]
        await harness.schedule(
            survey_id, send_at, reminder_at=reminder_at, expires_at=send_at + EXPIRES
        )
        if survey.skip:
            await harness.skip(survey_id)
        if survey.answer is not None:
            await harness.answer(survey_id, opt_out=survey.answer == "opt-out")
    await harness.advance(180)
    await harness.advance(EXPIRES.total_seconds() + 120, step=timedelta(seconds=15))
    outcome = harness.outcome()
    sent_first = {c.survey_id for c in harness.senders.sent if not c.reminder}
    for survey_id in ids:
        # A send after a transient answer is a retry: the provider said nothing went out.
        assert harness.senders.delivered(survey_id) <= 1, (survey_id, harness.runtime.crashes)
        assert harness.senders.delivered(survey_id, reminder=True) <= 1, survey_id
        assert len(outcome.endings(survey_id)) == 1, (survey_id, outcome.events.get(survey_id))
        if "SurveySent" in outcome.kinds(survey_id):
            assert survey_id in sent_first, survey_id
    # One send in flight at a time: a crash leaves at most one outcome nobody knows.
    lost = [
        survey_id
        for survey_id in ids
        if any(
            getattr(e, "reason", None) == OUTCOME_UNKNOWN for e in outcome.events.get(survey_id, [])
        )
        and not any(isinstance(a, Unknown) for a in harness.senders.answers.get(survey_id, []))
    ]
    assert len(lost) <= harness.runtime.restarts(ScheduleSurveys.name), lost
