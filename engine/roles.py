"""Who a signed-in person is and what they may do, from the identity provider's claims.

The rules, in order: the subject or a *verified* email address listed in
``[web.oidc]`` admins / operators / viewers; every value of ``role_claim``
found in ``claim_roles``; then ``default_role``. The highest role any rule
gives wins, so a person in the operators' group who is also listed as an
admin is an admin. Nothing matched and no default: not let in, with a reason
the sign-in page can show (no claim values are repeated in it).

An address counts only with ``email_verified`` true: some providers let a
person type any address into their profile, and a listed address must not
be claimable that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from schemas.accounts import Actor, Role, highest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from schemas.accounts import OidcConfig

MAX_NAME_LENGTH: Final = 100
MAX_SUBJECT_LENGTH: Final = 255


@dataclass(frozen=True, slots=True)
class Refused:
    """A sign-in that does not give a session, and why (for the log and the page)."""

    reason: str


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def role_of(claims: Mapping[str, object], config: OidcConfig) -> Role | None:
    """Give the highest role the claims earn under ``config``, or None."""
    found: list[Role] = []
    listed = config.listed_roles()
    subject = claims.get(config.subject_claim)
    if isinstance(subject, str) and subject in listed:
        found.append(listed[subject])
    email = claims.get("email")
    if isinstance(email, str) and claims.get("email_verified") is True:
        role = listed.get(email.lower())
        if role is not None:
            found.append(role)
    if config.role_claim is not None:
        found.extend(
            config.claim_roles[value]
            for value in _strings(claims.get(config.role_claim))
            if value in config.claim_roles
        )
    return highest(found) or config.default_role


def actor_of(claims: Mapping[str, object], config: OidcConfig) -> Actor | Refused:
    """Make the signed-in person from verified ID token claims, or say why not."""
    subject = claims.get(config.subject_claim)
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
        return Refused(f"the identity provider sent no usable {config.subject_claim!r} claim")
    role = role_of(claims, config)
    if role is None:
        return Refused("no role is configured for this account")
    return Actor(name=display_name(claims, config, subject), subject=subject, role=role)


def display_name(claims: Mapping[str, object], config: OidcConfig, subject: str) -> str:
    """Give the name to show and record: the name claim, the username, else the subject.

    Never the email address: acknowledgements travel on the alerts topic,
    which carries no addresses.
    """
    for claim in (config.name_claim, "name", "preferred_username"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip() and "@" not in value:
            return " ".join(value.split())[:MAX_NAME_LENGTH]
    return subject[:MAX_NAME_LENGTH]
