"""Roles from the identity provider's claims: lists, group claims, defaults and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.roles import Refused, actor_of, role_of
from schemas.accounts import Actor, OidcConfig, Role

CONFIG = OidcConfig.model_validate(
    {
        "issuer": "https://login.example.fi/tenant/v2.0",
        "client_id": "palaute",
        "session_key": "s" * 40,
        "role_claim": "groups",
        "claim_roles": {"palaute-ops": "operator", "palaute-read": "viewer"},
        "admins": ["sub-admin", "Admin@Example.fi"],
        "viewers": ["sub-viewer"],
    }
)


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"sub": "sub-admin"}, Role.ADMIN),
        ({"sub": "sub-viewer"}, Role.VIEWER),
        ({"sub": "x", "groups": ["palaute-read"]}, Role.VIEWER),
        ({"sub": "x", "groups": ["other", "palaute-ops"]}, Role.OPERATOR),
        ({"sub": "x", "groups": "palaute-ops"}, Role.OPERATOR),
        ({"sub": "sub-viewer", "groups": ["palaute-ops"]}, Role.OPERATOR),
        ({"sub": "x", "email": "admin@example.fi", "email_verified": True}, Role.ADMIN),
        ({"sub": "x", "email": "admin@example.fi"}, None),
        ({"sub": "x", "email": "admin@example.fi", "email_verified": "true"}, None),
        ({"sub": "x", "groups": ["palaute-admins"]}, None),
        ({"sub": "x", "groups": [1, None]}, None),
        ({"sub": "x"}, None),
    ],
)
def test_the_highest_role_any_rule_gives_wins(claims: dict[str, Any], role: Role | None) -> None:
    """A person in several groups gets the most they are entitled to, and no more."""
    assert role_of(claims, CONFIG) == role


def test_an_unverified_address_does_not_earn_a_listed_role() -> None:
    """Some providers let anyone type any address: only a verified one may match a list."""
    claims = {"sub": "attacker", "email": "ADMIN@example.fi", "email_verified": False}
    assert role_of(claims, CONFIG) is None


def test_someone_nothing_matches_is_refused_unless_a_default_role_is_set() -> None:
    """Signing in proves who someone is, not that they belong: the default is to refuse."""
    claims = {"sub": "stranger", "name": "Vieras"}
    assert isinstance(actor_of(claims, CONFIG), Refused)
    lenient = CONFIG.model_copy(update={"default_role": Role.VIEWER})
    assert actor_of(claims, lenient) == Actor(name="Vieras", subject="stranger", role=Role.VIEWER)


def test_the_subject_claim_can_be_entras_object_id() -> None:
    """Entra ID's sub differs per application; its oid is the person's lasting identifier."""
    config = CONFIG.model_copy(update={"subject_claim": "oid", "admins": ["oid-1"]})
    actor = actor_of({"sub": "pairwise", "oid": "oid-1", "name": "Aino"}, config)
    assert actor == Actor(name="Aino", subject="oid-1", role=Role.ADMIN)
    assert isinstance(actor_of({"sub": "pairwise", "name": "Aino"}, config), Refused)


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        ({"name": "  Aino   Virtanen "}, "Aino Virtanen"),
        ({"name": "aino@example.fi", "preferred_username": "avirtanen"}, "avirtanen"),
        ({"preferred_username": "aino@example.fi"}, "sub-admin"),
        ({}, "sub-admin"),
    ],
)
def test_the_recorded_name_is_never_an_email_address(claims: dict[str, Any], name: str) -> None:
    """The name travels on the alerts topic, which carries no addresses."""
    actor = actor_of({"sub": "sub-admin", **claims}, CONFIG)
    assert isinstance(actor, Actor)
    assert actor.name == name


def test_roles_are_written_by_name_and_a_short_session_key_is_refused() -> None:
    """The configuration says "operator", not 2; a guessable key would forge sessions."""
    assert CONFIG.claim_roles["palaute-ops"] is Role.OPERATOR
    assert Actor(name="A", subject="s", role=Role.ADMIN).model_dump(mode="json")["role"] == "admin"
    with pytest.raises(ValidationError, match="at least 32"):
        OidcConfig.model_validate(
            {"issuer": "https://idp.example.fi", "client_id": "c", "session_key": "short"}
        )
    with pytest.raises(ValidationError):
        CONFIG.model_validate({**CONFIG.model_dump(), "claim_roles": {"g": "superuser"}})
