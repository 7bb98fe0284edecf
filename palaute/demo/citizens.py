"""Simulated citizens: who answers, how, and with what score.

Scores follow an ordered-probit model, as in the alert benchmark: a latent
satisfaction around the touchpoint's level, cut into the five boxes of the
1-5 scale, so most answers are 4s and 5s with a tail of low ones. Once the
demo degrades a touchpoint its level falls to about 3.

SMS is answered more often and faster than email, and an SMS reply counts at
once; an email vote counts at once only with a comment (human evidence, see
``engine.evidence``), otherwise it waits for the quiet period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

SMS_ANSWER_RATE = 0.65
EMAIL_ANSWER_RATE = 0.45
EMAIL_COMMENT_RATE = 0.6
STOP_RATE = 0.01
NO_NUMBER_RATE = 0.02
DEGRADED_LEVEL = 2.9
LATENT_SD = 1.0
CUTS = (1.5, 2.5, 3.5, 4.5)

REPLY_FORMS = (
    "{score}",
    "{score}",
    "{score}",
    "{score} ",
    "{score}!",
    "arvosana {score}",
    "{score}/5",
)
COMMENTS = {
    1: ("Jonotin tunnin.", "Asia jäi hoitamatta."),
    2: ("Piti soittaa monta kertaa.", "Epäselvä vastaus."),
    3: ("Ihan ok.", "Kesti vähän."),
    4: ("Hyvä palvelu.", "Sain apua."),
    5: ("Kiitos, erinomaista!", "Nopea ja ystävällinen."),
}


def score(rng: random.Random, level: float) -> int:
    """Draw one 1-5 answer around ``level``."""
    latent = rng.gauss(level, LATENT_SD)
    return 1 + sum(latent > cut for cut in CUTS)


@dataclass(frozen=True)
class SmsReply:
    """What a citizen texts back, and after how many seconds."""

    body: str
    delay: float
    score: int | None


def sms_reply(rng: random.Random, level: float, speed: float) -> SmsReply | None:
    """Decide whether and what a citizen replies to a survey SMS; None for no answer."""
    if rng.random() >= SMS_ANSWER_RATE:
        return None
    delay = rng.uniform(2.0, 12.0) / speed
    roll = rng.random()
    if roll < STOP_RATE:
        return SmsReply("LOPETA", delay, None)
    if roll < STOP_RATE + NO_NUMBER_RATE:
        return SmsReply("ok", delay, None)
    value = score(rng, level)
    return SmsReply(rng.choice(REPLY_FORMS).format(score=value), delay, value)


@dataclass(frozen=True)
class EmailAnswer:
    """A one-tap answer from the survey email: the score, when, and an optional comment."""

    score: int
    delay: float
    comment: str | None


def email_answer(rng: random.Random, level: float, speed: float) -> EmailAnswer | None:
    """Decide whether and how a citizen answers a survey email; None for no answer."""
    if rng.random() >= EMAIL_ANSWER_RATE:
        return None
    value = score(rng, level)
    comment = rng.choice(COMMENTS[value]) if rng.random() < EMAIL_COMMENT_RATE else None
    return EmailAnswer(value, rng.uniform(5.0, 20.0) / speed, comment)
