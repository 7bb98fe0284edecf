"""Pseudonymous citizen keys: a keyed HMAC over one normalised identity.

Every per-citizen rule (frequency caps, opt-out, de-duplication) runs on this
key, and it is the Kafka key of the surveys topic, so it must be stable for a
person and give nothing away without the secret.

Which identity is hashed, in order of preference:

1. the source system's own citizen reference, **namespaced by the event
   source**. A reference is only unique inside the system that issued it:
   customer 1042 of the CRM and customer 1042 of the booking system are as
   a rule two different people. Merging them would apply one person's opt-out
   or frequency cap to a stranger, which is worse than the price of the
   namespace: the same person reaching us through two systems with references
   gets two keys, and the caps count per system for them.
2. the mobile number in E.164 form (the schemas normalise it on validation);
3. the email address, lower-cased in full (mailboxes are case-insensitive in
   practice, and a key must not split on a capital letter).

Each kind is prefixed (``id``, ``phone``, ``email``) before hashing, so a
reference that happens to read like a phone number never collides with one.

A key is hex, and since 2023 the letters A-F are century signs of the
henkilötunnus: about one key in 7,700 held six digits, a letter A-F, three
digits and a matching check character, a valid identity code. Every event
that carries the key is refused by the identity-code check at the boundary,
so that citizen's every answer was lost. Such a key is derived again with a
counter until it holds no code. Every other key stays what it was, so the
histories, caps and opt-outs stored under them still apply; the few citizens
whose key changes are the ones whose answers could not be taken anyway.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from schemas.identity_codes import contains_identity_code

if TYPE_CHECKING:
    from schemas.contacts import Citizen

_DOMAIN = b"palaute-citizen-key\x00v1\x00"
_RETRY = b"\x00retry\x00"


def _identity(citizen: Citizen, source: str) -> bytes:
    if citizen.id is not None:
        return b"id\x00" + source.encode() + b"\x00" + citizen.id.encode()
    if citizen.phone is not None:
        return b"phone\x00" + citizen.phone.encode()
    if citizen.email is not None:
        return b"email\x00" + citizen.email.lower().encode()
    # The schema refuses a citizen with neither, so this is a caller's bug.
    raise ValueError("a citizen needs an id, a phone number or an email address")


def citizen_key(secret: bytes, citizen: Citizen, *, source: str) -> str:
    """Give the citizen's pseudonymous key: 64 hex digits of HMAC-SHA256.

    ``source`` is the CloudEvents ``source`` of the contact event; it
    namespaces the source system's own citizen reference (see the module).
    """
    if not secret:
        raise ValueError("the pseudonymisation key must not be empty")
    message = _DOMAIN + _identity(citizen, source)
    key = hmac.new(secret, message, hashlib.sha256).hexdigest()
    attempt = 0
    while contains_identity_code(key):  # about 1 in 7,700 keys; see the module
        attempt += 1
        retry = message + _RETRY + str(attempt).encode()
        key = hmac.new(secret, retry, hashlib.sha256).hexdigest()
    return key
