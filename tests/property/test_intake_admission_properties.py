"""The intake's admission over anything a client can put in a record: one outcome, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decoding import Rejected
from schemas.samples import contact_completed
from streams.stages.intake import Admitted, admit_contact

SECRET = b"property-test-pseudonymisation-key"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
VALID = contact_completed(NOW - timedelta(minutes=3)).model_dump_json().encode()

header_names = st.one_of(
    st.sampled_from(
        ["content-type", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_x"]
    ),
    st.text(max_size=20),
)
header_values = st.one_of(st.none(), st.binary(max_size=64), st.sampled_from([b"1.0", b"{}"]))
header_lists = st.lists(st.tuples(header_names, header_values), max_size=8).flatmap(
    lambda items: st.sampled_from([items, tuple(items), items or None])
)


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(st.none(), st.binary(max_size=512), st.just(VALID)), headers=header_lists)
def test_every_record_is_admitted_or_rejected_with_a_reason(
    value: bytes | None, headers: object
) -> None:
    """Whatever bytes and headers arrive, the intake gives exactly one outcome and never raises."""
    outcome = admit_contact(value, headers, SECRET, NOW)
    assert isinstance(outcome, Admitted | Rejected)
    if isinstance(outcome, Rejected):
        assert outcome.code
        assert outcome.reason
    else:
        assert outcome.key
        assert outcome.value


@settings(max_examples=300, deadline=None)
@given(
    extra=st.lists(
        st.tuples(
            st.one_of(st.text(max_size=20), st.text(max_size=8).map(lambda n: "ce_" + n)).filter(
                lambda name: name.lower() not in {"ce_specversion", "content-type"}
            ),
            header_values,
        ),
        max_size=8,
    )
)
def test_headers_that_are_no_event_attribute_never_change_the_outcome(
    extra: list[tuple[str, bytes | None]],
) -> None:
    """A traceparent, a type hint or a stray ce_* header must not cost a structured event."""
    plain = admit_contact(VALID, None, SECRET, NOW)
    assert isinstance(plain, Admitted)
    assert admit_contact(VALID, tuple(extra), SECRET, NOW) == plain
