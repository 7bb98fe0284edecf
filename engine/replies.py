"""Reading a citizen's SMS reply, and the short texts sent back in TwiML.

A reply is read in this order:

1. **Empty** (only whitespace or invisible characters): unrecognised, reason
   ``empty``.
2. **Keywords** — opt-out, opt-in, help — match only when the keyword is the
   whole message, as Twilio and the carriers match them. Case, accents,
   surrounding punctuation and emoji and inner spaces or hyphens are ignored
   (``Stop!``, ``lopeta``, ``hjalp``, ``opt-out``), which is a little more
   lenient than Twilio's exact match. A keyword inside a sentence is not one:
   ``en lopeta`` means "I will not stop" and ``älä lopeta`` "do not stop", and
   a reply that carries a score as well (``5 stop``) is read as the score.
   The unrecognised answer tells the citizen the stop word, so nobody is left
   without a way out.
3. **Numbers**: ASCII, fullwidth and other Unicode decimal digits, circled and
   superscript digits (via NFKC) and keycap emoji (``4️⃣``, ``🔟``) count; any
   other text or emoji around them is noise (``5!!``, ``👍 5``, ``arvosana 4``).
   ``4/5`` on a 1-5 scale is a 4 (the denominator is the top of the scale).
   One number, repeated or not, is the score when the scale contains it and
   ``out-of-scale`` otherwise (``45`` on 1-5 is forty-five, never a 4).
   Several different numbers, or a fraction such as ``4,5`` or ``4½``, are
   ``ambiguous``: the citizen is between two scores and is asked again.
4. **Number words**, only when one word is the whole message: Finnish, Swedish
   and English cardinals 0-10 and the Finnish school-grade names (``vitonen``).
   Inside a sentence a number word is too often something else (Swedish
   ``ett`` is also the article, Finnish ``en`` a negation), so it is not read.

Everything else is ``no-number``: the citizen gets the "reply with a number"
text and nothing is counted.

Reply texts are GSM-7 (see connectors.sms_segments): one character outside it would turn
the answer into UCS-2 and double its price.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from engine.ids import derived_id
from schemas.base import Language, Scale

if TYPE_CHECKING:
    from collections.abc import Mapping

# --- results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Score:
    """A score on the survey's scale."""

    value: int


@dataclass(frozen=True, slots=True)
class OptOutRequest:
    """The citizen asked to get no more surveys.

    ``twilio_default`` tells whether Twilio's default opt-out handling acts on
    this exact body too: Twilio then blocks the number and sends its own
    confirmation, so an answer of ours would be refused (error 21610).
    """

    keyword: str
    twilio_default: bool


@dataclass(frozen=True, slots=True)
class OptInRequest:
    """The citizen asked to get surveys again after opting out."""

    keyword: str
    twilio_default: bool


@dataclass(frozen=True, slots=True)
class HelpRequest:
    """The citizen asked what these messages are."""

    keyword: str
    twilio_default: bool


class UnrecognisedReason(StrEnum):
    """Why a reply gave no score."""

    EMPTY = "empty"
    NO_NUMBER = "no-number"
    OUT_OF_SCALE = "out-of-scale"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """A reply that is neither a score nor a keyword; it is not counted."""

    reason: UnrecognisedReason


#: What a reply means.
ReplyParse = Score | OptOutRequest | OptInRequest | HelpRequest | Unrecognised

# --- keywords ------------------------------------------------------------------

#: Twilio's default keywords on long codes (matched on the exact trimmed body).
TWILIO_OPT_OUT = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
TWILIO_OPT_IN = frozenset({"START", "YES", "UNSTOP"})
TWILIO_HELP = frozenset({"HELP", "INFO"})

#: Every keyword read here, folded (lower case, no accents, no spaces or hyphens).
#: Configure the Finnish and Swedish ones in Twilio's Advanced Opt-Out as well,
#: so that Twilio's block list and ours agree.
OPT_OUT_KEYWORDS = frozenset(
    {word.casefold() for word in TWILIO_OPT_OUT}
    | {"stop all", "opt out"}  # spaced forms, folded below
    | {"lopeta", "seis", "peru", "peruuta"}  # Finnish
    | {"sluta", "avsluta", "stoppa", "avbryt"}  # Swedish
)
OPT_IN_KEYWORDS = frozenset({word.casefold() for word in TWILIO_OPT_IN} | {"aloita"} | {"starta"})
HELP_KEYWORDS = frozenset({word.casefold() for word in TWILIO_HELP} | {"apua", "ohje"} | {"hjälp"})

_SEPARATORS = re.compile(r"[\s\-_]+")


def _fold(text: str) -> str:
    """Lower-case, accent-free, without spaces or hyphens: the form keywords compare in."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _SEPARATORS.sub("", bare)


_FOLDED_OPT_OUT = frozenset(_fold(word) for word in OPT_OUT_KEYWORDS)
_FOLDED_OPT_IN = frozenset(_fold(word) for word in OPT_IN_KEYWORDS)
_FOLDED_HELP = frozenset(_fold(word) for word in HELP_KEYWORDS)

# --- number words (whole message only) -------------------------------------------

_NUMBER_WORDS: dict[str, int] = {
    # Finnish cardinals and the school-grade names used in speech.
    **dict.fromkeys(("nolla",), 0),
    **dict.fromkeys(("yksi", "ykkonen"), 1),
    **dict.fromkeys(("kaksi", "kakkonen"), 2),
    **dict.fromkeys(("kolme", "kolmonen"), 3),
    **dict.fromkeys(("nelja", "nelonen"), 4),
    **dict.fromkeys(("viisi", "vitonen"), 5),
    **dict.fromkeys(("kuusi", "kutonen"), 6),
    **dict.fromkeys(("seitseman", "seiska"), 7),
    **dict.fromkeys(("kahdeksan", "kasi"), 8),
    **dict.fromkeys(("yhdeksan", "ysi"), 9),
    **dict.fromkeys(("kymmenen", "kymppi"), 10),
    # Swedish ("en" is left out: it is also Finnish for "I do not").
    "noll": 0,
    "ett": 1,
    "tva": 2,
    "tre": 3,
    "fyra": 4,
    "fem": 5,
    "sex": 6,
    "sju": 7,
    "atta": 8,
    "nio": 9,
    "tio": 10,
    # English.
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}

# --- numbers -------------------------------------------------------------------

_KEYCAP_TEN = "\N{KEYCAP TEN}"
_KEYCAP = "\N{COMBINING ENCLOSING KEYCAP}"
_VARIATION_SELECTOR = "\N{VARIATION SELECTOR-16}"
#: Longer digit runs are no score on any scale; ``int`` is never asked to read them
#: (Python refuses integers of more than 4,300 digits with an exception).
_MAX_DIGITS = 6
_FRACTION = re.compile(r"(?<!\d)(\d+)\s*[/\N{FRACTION SLASH}]\s*(\d+)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _is_invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in {"Cc", "Cf", "Mn", "Me", "Zs"}


def _edges_trimmed(folded: str) -> str:
    """Drop punctuation, symbols and emoji around a word, keeping the word itself."""
    start, end = 0, len(folded)
    while start < end and not folded[start].isalnum():
        start += 1
    while end > start and not folded[end - 1].isalnum():
        end -= 1
    return folded[start:end]


def _keyword(text: str) -> ReplyParse | None:
    core = _edges_trimmed(_fold(text))
    exact = text.strip().upper()
    if core in _FOLDED_OPT_OUT:
        return OptOutRequest(keyword=core.upper(), twilio_default=exact in TWILIO_OPT_OUT)
    if core in _FOLDED_OPT_IN:
        return OptInRequest(keyword=core.upper(), twilio_default=exact in TWILIO_OPT_IN)
    if core in _FOLDED_HELP:
        return HelpRequest(keyword=core.upper(), twilio_default=exact in TWILIO_HELP)
    return None


def _digits_value(digits: str) -> int | None:
    """Read a run of decimal digits; ``None`` when it is too long to be any score."""
    ascii_digits = "".join(str(unicodedata.decimal(char)) for char in digits)
    significant = ascii_digits.lstrip("0") or "0"
    if len(significant) > _MAX_DIGITS:
        return None
    return int(significant)


def _numbers(text: str, scale: Scale) -> tuple[set[int], bool]:
    """Return the distinct whole numbers in ``text`` and whether a fraction was seen.

    A number too long to read becomes ``scale.high + 1``: it is out of scale,
    which is all that matters about it.
    """
    fractional = False
    kept: list[str] = []
    for char in text.replace(_KEYCAP_TEN, " 10 "):
        value = unicodedata.numeric(char, None)
        if value is not None and not char.isdecimal() and value != int(value):
            fractional = True  # ½, ¼ and friends: between two scores
            kept.append(" ")
        else:
            kept.append(char)
    normal = unicodedata.normalize("NFKC", "".join(kept))
    normal = normal.replace(_VARIATION_SELECTOR, "").replace(_KEYCAP, " ")

    def out_of_scale() -> int:
        return scale.high + 1

    def whole_of_fraction(match: re.Match[str]) -> str:
        if _digits_value(match.group(2)) == scale.high:
            return f" {match.group(1)} "
        return match.group(0)

    normal = _FRACTION.sub(whole_of_fraction, normal)
    found: set[int] = set()
    for match in _NUMBER.finditer(normal):
        whole, _, fraction = match.group(0).replace(",", ".").partition(".")
        if fraction.strip("0"):
            fractional = True
        value = _digits_value(whole)
        found.add(out_of_scale() if value is None else value)
    return found, fractional


def parse_reply(text: str, scale: Scale) -> ReplyParse:
    """Read one SMS reply against the scale of the citizen's open survey."""
    if all(_is_invisible(char) for char in text):
        return Unrecognised(UnrecognisedReason.EMPTY)
    keyword = _keyword(text)
    if keyword is not None:
        return keyword
    found, fractional = _numbers(text, scale)
    if not found:
        word = _NUMBER_WORDS.get(_edges_trimmed(_fold(text)))
        if word is None:
            return Unrecognised(UnrecognisedReason.NO_NUMBER)
        found = {word}
    if fractional or len(found) > 1:
        return Unrecognised(UnrecognisedReason.AMBIGUOUS)
    (value,) = found
    if not scale.contains(value):
        return Unrecognised(UnrecognisedReason.OUT_OF_SCALE)
    return Score(value)


# --- answers -------------------------------------------------------------------


class ReplyKind(StrEnum):
    """Which answer the citizen gets back."""

    THANKS = "thanks"
    OPTED_OUT = "opted-out"
    OPTED_IN = "opted-in"
    HELP = "help"
    ASK_AGAIN = "ask-again"  # no score understood: "reply with a number from 1 to 5"
    NO_OPEN_SURVEY = "no-open-survey"  # a score, but nothing is waiting for one


# {low} and {high} are the ends of the scale. GSM-7 only: hyphen-minus, no en dash.
_ANSWERS: dict[Language, dict[ReplyKind, str]] = {
    Language.FI: {
        ReplyKind.THANKS: "Kiitos vastauksestasi!",
        ReplyKind.OPTED_OUT: (
            "Et saa enää palautekyselyjä. Jos haluat ne takaisin, vastaa ALOITA."
        ),
        ReplyKind.OPTED_IN: "Saat taas palautekyselyjä. Lopetus: vastaa LOPETA.",
        ReplyKind.HELP: (
            "Palautekysely: vastaa numerolla {low}-{high}. Vastaaminen on vapaaehtoista. "
            "Jos et halua kyselyjä, vastaa LOPETA."
        ),
        ReplyKind.ASK_AGAIN: (
            "Vastaa numerolla {low}-{high}. Jos et halua kyselyjä, vastaa LOPETA."
        ),
        ReplyKind.NO_OPEN_SURVEY: ("Sinulle ei ole nyt avointa kyselyä. Kiitos silti viestistäsi!"),
    },
    Language.SV: {
        ReplyKind.THANKS: "Tack för ditt svar!",
        ReplyKind.OPTED_OUT: ("Du får inte längre enkäter. Om du vill få dem igen, svara STARTA."),
        ReplyKind.OPTED_IN: "Du får enkäter igen. Svara SLUTA för att avsluta.",
        ReplyKind.HELP: (
            "Enkät: svara med ett tal {low}-{high}. Det är frivilligt att svara. "
            "Om du inte vill få enkäter, svara SLUTA."
        ),
        ReplyKind.ASK_AGAIN: (
            "Svara med ett tal {low}-{high}. Om du inte vill få enkäter, svara SLUTA."
        ),
        ReplyKind.NO_OPEN_SURVEY: (
            "Du har ingen öppen enkät just nu. Tack ändå för ditt meddelande!"
        ),
    },
    Language.EN: {
        ReplyKind.THANKS: "Thank you for your answer!",
        ReplyKind.OPTED_OUT: (
            "You will get no more feedback requests. To get them again, reply START."
        ),
        ReplyKind.OPTED_IN: "You will get feedback requests again. To end them, reply STOP.",
        ReplyKind.HELP: (
            "Feedback survey: reply with a number {low}-{high}. Answering is voluntary. "
            "To get no more requests, reply STOP."
        ),
        ReplyKind.ASK_AGAIN: (
            "Reply with a number {low}-{high}. To get no more requests, reply STOP."
        ),
        ReplyKind.NO_OPEN_SURVEY: (
            "There is no open question for you now. Thank you for your message!"
        ),
    },
}

#: Languages without reviewed wording, and the language used instead (as engine.messages).
_FALLBACKS: dict[Language, Language] = {Language.SE: Language.FI}


#: The catalogue's ``texts`` key of each answer.
REPLY_KEYS: dict[ReplyKind, str] = {
    kind: "reply_" + kind.value.replace("-", "_") for kind in ReplyKind
}


def reply_text(
    kind: ReplyKind,
    language: Language,
    scale: Scale,
    texts: Mapping[Language, Mapping[str, str]] | None = None,
) -> str:
    """Return the answer of ``kind`` in the citizen's language, as the catalogue words it.

    Sámi only when ``texts`` gives every answer in Sámi; otherwise Finnish.
    """
    given = (texts or {}).get(language, {})
    if language in _FALLBACKS and not all(given.get(key) for key in REPLY_KEYS.values()):
        language = _FALLBACKS[language]
        given = (texts or {}).get(language, {})
    template = given.get(REPLY_KEYS[kind]) or _ANSWERS[language][kind]
    try:
        return template.format(low=scale.low, high=scale.high)
    except (KeyError, IndexError, ValueError):  # a configured text with a stray brace
        return _ANSWERS[_FALLBACKS.get(language, language)][kind].format(
            low=scale.low, high=scale.high
        )


# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def twiml_message(text: str) -> str:
    """Render a TwiML response that answers with one message.

    Characters XML 1.0 cannot carry are dropped rather than escaped: no escape
    exists for them, and Twilio would refuse the whole document.
    """
    body = escape(_NOT_XML.sub("", text))
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{body}</Message></Response>'


def twiml_empty() -> str:
    """Render a TwiML response that sends nothing (Twilio answered a keyword itself)."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# --- identity of a reply ------------------------------------------------------------


def sms_answer_id(message_sid: str) -> str:
    """Name the answer a reply gives after the message itself, the same in every process.

    Twilio's ``MessageSid`` is covered by the request's signature (the
    idempotency token is not), so the same message replayed, retried or sent
    to another web process gives the same answer id, which the answers join
    refuses as a repeat. The id is letters only (:mod:`engine.ids`): Twilio's
    hex could hold the shape of an identity code.
    """
    return "sms-" + derived_id("sms-answer", message_sid)
