"""An SMS reply's answer id: the same for the same message everywhere, never an identity code."""

from __future__ import annotations

import re

import pytest

from engine.replies import sms_answer_id
from schemas.identity_codes import contains_identity_code

SIDS = ["SM" + "0" * 32, "SM" + "f" * 32, "SM120391a123fabcdef0123456789abcd", "SMx"]


@pytest.mark.parametrize("sid", SIDS)
def test_the_same_message_gives_the_same_answer_id(sid: str) -> None:
    """A replay in another process or after a restart must be the same answer to the join."""
    assert sms_answer_id(sid) == sms_answer_id(sid)


def test_different_messages_give_different_answer_ids() -> None:
    """Two replies of one citizen are two answers: the later one may change the score."""
    assert len({sms_answer_id(sid) for sid in SIDS}) == len(SIDS)


@pytest.mark.parametrize("sid", SIDS)
def test_an_answer_id_is_a_valid_identifier_without_digits(sid: str) -> None:
    """Twilio's hex may hold a code's shape; the id written must not, or the answer is refused."""
    answer_id = sms_answer_id(sid)
    assert re.fullmatch(r"sms-[a-z]+", answer_id)
    assert len(answer_id) <= 128
    assert not contains_identity_code(answer_id)
