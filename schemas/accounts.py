"""People who sign in: the OpenID Connect settings, the roles, and who did what.

Staff sign in with their organisation's identity provider (Entra ID,
Google, a regional identity service: anything that speaks OpenID Connect).
A person's role comes from a claim the provider sends (a group or an app
role) or from a list of subjects or verified addresses in the configuration;
the highest role that matches wins. Someone who matches nothing is refused,
unless ``default_role`` says otherwise. See docs/administration.md.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

MIN_SESSION_KEY_LENGTH: Final = 32


class Role(enum.StrEnum):
    """What a person may do; each role may also do everything of the ones below it."""

    VIEWER = "viewer"  # reads the dashboard
    OPERATOR = "operator"  # also acknowledges and comments alerts
    ADMIN = "admin"  # also edits the catalogue

    @property
    def rank(self) -> int:
        """Order the roles: viewer 1, operator 2, admin 3."""
        return _RANKS[self]

    def includes(self, other: Role) -> bool:
        """Tell whether this role may do everything ``other`` may."""
        return self.rank >= other.rank


_RANKS: Final = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def highest(roles: Iterable[Role]) -> Role | None:
    """Give the highest of ``roles``, or None when there are none."""
    return max(roles, key=lambda role: role.rank, default=None)


def _session_key(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value()) < MIN_SESSION_KEY_LENGTH:
        raise ValueError(f"must be at least {MIN_SESSION_KEY_LENGTH} characters (use a random key)")
    return key


Principal = Annotated[str, Field(min_length=1, max_length=320)]


class OidcConfig(BaseModel):
    """The identity provider, the session cookie, and who gets which role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: HttpUrl = Field(
        description="The provider's issuer URL; /.well-known/openid-configuration is read "
        "from under it (Entra ID: https://login.microsoftonline.com/TENANT/v2.0, "
        "Google: https://accounts.google.com)."
    )
    client_id: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        description="The client (application) id this service is registered under at the "
        "provider; its redirect URI is public_base_url + /auth/callback."
    )
    client_secret: SecretStr | None = Field(
        default=None,
        description="The client secret, for confidential clients; PKCE is used either way.",
    )
    scopes: list[Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,100}$")]] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes asked for; openid is required, profile gives the name.",
    )
    session_key: Annotated[SecretStr, AfterValidator(_session_key)] = Field(
        description="Signs the session cookie; at least 32 random characters. Changing it "
        "signs everybody out."
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 7)] = Field(
        default=8.0,
        description="How long a sign-in lasts; the role is read again at the next sign-in.",
    )
    subject_claim: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        default="sub",
        description="The claim that identifies a person for good (Entra ID: 'oid' is the "
        "same in every application, 'sub' is not).",
    )
    name_claim: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        default="name", description="The claim with the name shown on acknowledgements."
    )
    role_claim: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="A claim holding group or role names (Entra ID: 'roles' or 'groups'); "
        "its values are looked up in claim_roles.",
    )
    claim_roles: dict[Annotated[str, Field(min_length=1, max_length=255)], Role] = Field(
        default_factory=dict, description="A role_claim value and the role it gives."
    )
    admins: list[Principal] = Field(
        default_factory=list, description="Subjects or verified email addresses of admins."
    )
    operators: list[Principal] = Field(
        default_factory=list, description="Subjects or verified email addresses of operators."
    )
    viewers: list[Principal] = Field(
        default_factory=list, description="Subjects or verified email addresses of viewers."
    )
    default_role: Role | None = Field(
        default=None,
        description="The role of a signed-in person nothing else matches; none: refused.",
    )

    @field_validator("scopes")
    @classmethod
    def _openid(cls, scopes: list[str]) -> list[str]:
        """Without the openid scope the provider sends no ID token to check."""
        if "openid" not in scopes:
            raise ValueError("must include openid")
        return scopes

    def listed_roles(self) -> dict[str, Role]:
        """Each configured subject or address (addresses in lower case) with its highest role."""
        found: dict[str, Role] = {}
        for role, people in (
            (Role.VIEWER, self.viewers),
            (Role.OPERATOR, self.operators),
            (Role.ADMIN, self.admins),
        ):
            for person in people:
                key = person.lower() if "@" in person else person
                found[key] = highest((role, found.get(key, role))) or role
        return found


class Actor(BaseModel):
    """Who did something, as the audit trail records it: a name and a lasting identifier.

    ``subject`` is the identity provider's subject of a signed-in person, or
    ``token:`` and the first characters of a program's token digest.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    subject: Annotated[str, Field(min_length=1, max_length=255)]
    role: Role
