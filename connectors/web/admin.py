"""``/admin``: admins edit the touchpoint catalogue in the browser, with previews first.

Routes (the admin role; every POST is a form checked against CSRF):

- ``GET /admin`` — every touchpoint, in force or retired, and a form for a
  new one (``POST /admin/touchpoints``);
- ``GET /admin/touchpoints/{id}`` — its name, KPI target and question in
  fi/sv/en; the SMS (with its GSM-7 segment count), the email and the
  answer page in each language as they are now; its history with a roll
  back to each earlier version;
- ``POST /admin/touchpoints/{id}/preview`` — the same page with the form's
  values previewed, nothing saved;
- ``POST /admin/touchpoints/{id}`` — save; ``.../retire``, ``.../rollback``.

Every change goes through :mod:`connectors.web.catalogue_api`, the same
validation and the same events as the HTTP API, recorded with the signed-in
person's name and subject.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from aiohttp import web
from pydantic import ValidationError

from connectors.web import admin_views as views
from connectors.web import catalogue_api as api
from connectors.web import csrf, pages_accounts
from connectors.web.access import ACCESS, Principal
from connectors.web.admin_preview import Preview, previews
from connectors.web.catalogue_routes import SERVICE
from connectors.web.dashboard import DASHBOARD_CSP
from connectors.web.errors import ApiError
from schemas.accounts import Role
from schemas.config import TouchpointConfig

if TYPE_CHECKING:
    from collections.abc import Mapping

    from schemas.config import Settings

_FORM_LANGUAGES: Final = ("fi", "sv", "en")


class AdminPage:
    """The handlers, around the settings (for the previews) and the catalogue service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _enter(self, request: web.Request) -> tuple[Principal, str]:
        principal = request.app[ACCESS].require(request, Role.ADMIN)
        return principal, pages_accounts.language(request)

    def _send(  # noqa: PLR0917 - the page's parts, in the order they are read
        self,
        request: web.Request,
        principal: Principal,
        lang: str,
        title: str,
        body: str,
        status: int = 200,
    ) -> web.Response:
        access = request.app[ACCESS]
        token = access.form_token(request, principal)
        field = csrf.hidden_field(token)
        account = pages_accounts.account_bar(
            lang, principal.actor.name, principal.actor.role.value, field
        )
        page = views.document(lang, title, body.replace("{csrf}", field), account)
        response = web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
        response.headers["Content-Security-Policy"] = DASHBOARD_CSP
        access.csrf_cookie(response, token)
        return response

    async def _checked(
        self, request: web.Request, principal: Principal, lang: str, back: str
    ) -> web.Response | None:
        try:
            await request.app[csrf.CSRF].check(request, principal.csrf_subject)
        except csrf.CsrfRejected as rejected:
            return csrf.rejection_response(request, rejected, lang, back)
        return None

    async def index(self, request: web.Request) -> web.Response:
        """GET /admin."""
        principal, lang = self._enter(request)
        return self._list(request, principal, lang, [])

    def _list(
        self,
        request: web.Request,
        principal: Principal,
        lang: str,
        errors: list[str],
        status: int = 200,
    ) -> web.Response:
        listing = api.list_touchpoints(request.app[SERVICE])
        body = views.list_body(lang, listing, "{csrf}", views.notice(lang, None, errors))
        return self._send(request, principal, lang, views.TEXT[lang]["title"], body, status)

    async def create(self, request: web.Request) -> web.Response:
        """POST /admin/touchpoints: a new touchpoint with a name; the rest from [defaults]."""
        principal, lang = self._enter(request)
        refused = await self._checked(request, principal, lang, f"/admin?lang={lang}")
        if refused is not None:
            return refused
        form = await request.post()
        touchpoint_id = str(form.get("id", "")).strip()
        name = str(form.get("name", "")).strip()
        body = {"id": touchpoint_id, "touchpoint": {"name": name} if name else {}}
        try:
            await api.create_touchpoint(request.app[SERVICE], body, by=principal.actor)
        except ApiError as error:
            return self._list(request, principal, lang, _reasons(error), error.status)
        return _see(f"/admin/touchpoints/{quote(touchpoint_id, safe='')}?lang={lang}&saved=1")

    async def touchpoint(self, request: web.Request) -> web.Response:
        """GET /admin/touchpoints/{id}: the form with the current values previewed."""
        principal, lang = self._enter(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        detail = api.get_touchpoint(request.app[SERVICE], touchpoint_id)
        values = _values(detail)
        saved = str(detail["version"]) if request.query.get("saved") else None
        return self._edit(request, principal, lang, touchpoint_id, values, [], saved)

    def _edit(  # noqa: PLR0917 - the page's parts
        self,
        request: web.Request,
        principal: Principal,
        lang: str,
        touchpoint_id: str,
        values: Mapping[str, Any],
        errors: list[str],
        saved: str | None = None,
        status: int = 200,
    ) -> web.Response:
        shown: list[Preview] = []
        try:
            shown = previews(self._candidate(touchpoint_id, values), self.settings)
        except ValidationError as error:
            errors = errors + [_field_error(detail) for detail in error.errors()]
        history = api.touchpoint_history(request.app[SERVICE], touchpoint_id)["history"]
        title = f"{values.get('name') or touchpoint_id}"
        body = views.edit_body(
            lang,
            touchpoint_id,
            values,
            shown,
            history,
            "{csrf}",
            views.notice(lang, saved, errors),
        )
        return self._send(request, principal, lang, title, body, status)

    def _candidate(self, touchpoint_id: str, values: Mapping[str, Any]) -> TouchpointConfig:
        """Make the touchpoint as the form would, resolved with [defaults]."""
        current, _ = self.settings.touchpoint(touchpoint_id)
        fields = current.model_dump(mode="json")
        for key in ("name", "kpi_target", "questions"):
            fields[key] = values.get(key)
        return TouchpointConfig.model_validate(fields)

    async def preview(self, request: web.Request) -> web.Response:
        """POST /admin/touchpoints/{id}/preview: the form's values, previewed, not saved."""
        principal, lang = self._enter(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        refused = await self._checked(request, principal, lang, f"/admin?lang={lang}")
        if refused is not None:
            return refused
        values, errors = _form_values(await request.post())
        return self._edit(request, principal, lang, touchpoint_id, values, errors)

    async def save(self, request: web.Request) -> web.Response:
        """POST /admin/touchpoints/{id}: validate and write the change, or say why not."""
        principal, lang = self._enter(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        refused = await self._checked(request, principal, lang, f"/admin?lang={lang}")
        if refused is not None:
            return refused
        form = await request.post()
        values, errors = _form_values(form)
        if errors:
            return self._edit(request, principal, lang, touchpoint_id, values, errors, status=422)
        body = {
            "touchpoint": {key: values[key] for key in ("name", "kpi_target", "questions")},
            "expected_version": values["version"],
            "comment": str(form.get("comment", "")).strip(),
        }
        try:
            await api.edit_touchpoint(request.app[SERVICE], touchpoint_id, body, by=principal.actor)
        except ApiError as error:
            return self._edit(
                request,
                principal,
                lang,
                touchpoint_id,
                values,
                _reasons(error),
                status=error.status,
            )
        return _see(f"/admin/touchpoints/{quote(touchpoint_id, safe='')}?lang={lang}&saved=1")

    async def retire(self, request: web.Request) -> web.Response:
        """POST /admin/touchpoints/{id}/retire."""
        principal, lang = self._enter(request)
        refused = await self._checked(request, principal, lang, f"/admin?lang={lang}")
        if refused is not None:
            return refused
        touchpoint_id = request.match_info["touchpoint_id"]
        try:
            await api.retire_touchpoint(request.app[SERVICE], touchpoint_id, {}, by=principal.actor)
        except ApiError as error:
            return self._list(request, principal, lang, _reasons(error), error.status)
        return _see(f"/admin?lang={lang}")

    async def roll_back(self, request: web.Request) -> web.Response:
        """POST /admin/touchpoints/{id}/rollback: back to the form's ``version``."""
        principal, lang = self._enter(request)
        refused = await self._checked(request, principal, lang, f"/admin?lang={lang}")
        if refused is not None:
            return refused
        touchpoint_id = request.match_info["touchpoint_id"]
        form = await request.post()
        version = str(form.get("version", ""))
        body = {"version": int(version) if version.isdigit() else -1}
        try:
            await api.roll_back(request.app[SERVICE], touchpoint_id, body, by=principal.actor)
        except ApiError as error:
            return self._list(request, principal, lang, _reasons(error), error.status)
        return _see(f"/admin/touchpoints/{quote(touchpoint_id, safe='')}?lang={lang}&saved=1")


def _values(detail: Mapping[str, Any]) -> dict[str, Any]:
    effective = detail.get("effective") or {}
    return {
        "version": detail.get("version", 0),
        "name": effective.get("name"),
        "kpi_target": effective.get("kpi_target"),
        "questions": dict(effective.get("questions") or {}),
    }


def _form_values(form: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Read the edit form; give the values and what is wrong with them (kept for the page)."""
    errors: list[str] = []
    version_text = str(form.get("expected_version", "0"))
    kpi_text = str(form.get("kpi_target", "")).strip().replace(",", ".")
    kpi: float | None = None
    if kpi_text:
        try:
            kpi = float(kpi_text)
        except ValueError:
            errors.append(f"kpi_target: {kpi_text!r} is not a number")
    name = str(form.get("name", "")).strip() or None
    questions = {code: str(form.get(f"question_{code}", "")).strip() for code in _FORM_LANGUAGES}
    return (
        {
            "version": int(version_text) if version_text.isdigit() else 0,
            "name": name,
            "kpi_target": kpi,
            "questions": questions,
        },
        errors,
    )


def _reasons(error: ApiError) -> list[str]:
    if error.errors:
        return [f"{problem.path}: {problem.message}" for problem in error.errors]
    return [error.message]


def _field_error(detail: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in detail.get("loc", ())) or "touchpoint"
    return f"{path}: {detail.get('msg', 'invalid')}"


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def setup(app: web.Application, settings: Settings) -> None:
    """Add the admin page's routes (the catalogue service must be set up already)."""
    page = AdminPage(settings)
    base = "/admin/touchpoints/{touchpoint_id}"
    app.router.add_get("/admin", page.index)
    app.router.add_post("/admin/touchpoints", page.create)
    app.router.add_get(base, page.touchpoint)
    app.router.add_post(base, page.save)
    app.router.add_post(base + "/preview", page.preview)
    app.router.add_post(base + "/retire", page.retire)
    app.router.add_post(base + "/rollback", page.roll_back)
