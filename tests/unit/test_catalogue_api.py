"""The catalogue API's operations on the real fold, with the topic kept in memory.

The producer here appends to a list and hands each record to the
follower at its offset, as reading the topic back would: the operations,
the validation, the versions, the conflicts and the history are the real
ones; only the broker is left out (the integration tests have it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.catalogue import CatalogueFollower, seed_change
from connectors.web import catalogue_api as api
from connectors.web.errors import ApiError
from schemas.base import Language
from schemas.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
PHONE = "phone-service-helsinki"


class _Sent:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __await__(self) -> Any:
        yield from ()
        return self


class TopicInMemory:
    """One partition: every record sent is read back by the follower at once."""

    def __init__(self, follower: CatalogueFollower) -> None:
        self.records: list[bytes] = []
        self.follower = follower

    async def send(self, topic: str, **record: Any) -> _Sent:
        """Append, then let the follower read it, as its follow loop would."""
        assert topic == self.follower.topic
        assert record["partition"] == 0
        self.records.append(record["value"])
        offset = len(self.records) - 1
        self.follower.take(offset, record["value"])
        return _Sent(offset)


def _service() -> tuple[api.CatalogueService, Settings, TopicInMemory]:
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    follower = CatalogueFollower(settings.kafka, "catalogue", settings.catalogue)
    follower._following = True
    topic = TopicInMemory(follower)
    seed = seed_change(settings, datetime(2026, 3, 1, tzinfo=UTC))
    follower.take(0, seed.model_dump_json().encode())
    topic.records.append(b"seed")
    return api.CatalogueService(follower, topic, settings.policy), settings, topic


async def test_an_edit_takes_effect_in_the_live_catalogue_with_its_version() -> None:
    """A question and a KPI target edited through the API are what the stages read next."""
    service, settings, _topic = _service()
    assert settings.catalogue.version == 1
    questions = {"fi": "Saitko apua?", "sv": "Fick du hjälp?", "en": "Did you get help?"}
    answer = await api.edit_touchpoint(
        service, PHONE, {"touchpoint": {"questions": questions, "kpi_target": 4.5}}, by="Aino"
    )
    assert answer["version"] == 2
    assert settings.catalogue.version == 2
    touchpoint, _known = settings.touchpoint(PHONE)
    assert touchpoint.question(Language.FI) == "Saitko apua?"
    assert touchpoint.kpi_target == 4.5
    # Fields not named keep their value.
    assert touchpoint.sampling_rate == 0.5


async def test_an_invalid_change_is_refused_with_its_toml_path_and_nothing_is_written() -> None:
    """A KPI target off the scale is a 422 naming the field, as config check would name it."""
    service, settings, topic = _service()
    written_before = len(topic.records)
    with pytest.raises(ApiError) as refused:
        await api.edit_touchpoint(service, PHONE, {"touchpoint": {"kpi_target": 9}}, by="Aino")
    assert refused.value.status == 422
    assert refused.value.errors[0].path == f"touchpoints.{PHONE}"
    assert "kpi_target must lie within 1..5" in refused.value.message
    with pytest.raises(ApiError) as misspelt:
        await api.edit_touchpoint(service, PHONE, {"touchpoint": {"kpi_targt": 4}}, by="Aino")
    assert misspelt.value.errors[0].path == f"touchpoints.{PHONE}.kpi_targt"
    assert "did you mean kpi_target" in misspelt.value.message
    assert len(topic.records) == written_before
    assert settings.catalogue.version == 1


async def test_an_edit_based_on_an_older_version_is_refused_as_a_conflict() -> None:
    """Two people editing at once: the one who did not see the other's change is told so."""
    service, settings, _topic = _service()
    await api.edit_touchpoint(service, PHONE, {"touchpoint": {"name": "A"}}, by="Aino")
    with pytest.raises(ApiError) as refused:
        await api.edit_touchpoint(
            service, PHONE, {"touchpoint": {"name": "B"}, "expected_version": 1}, by="Bertil"
        )
    assert refused.value.status == 409
    assert settings.touchpoint(PHONE)[0].name == "A"


async def test_create_retire_and_roll_back_with_who_when_and_what_in_the_history() -> None:
    """The history says each change; a roll back makes the touchpoint what it was."""
    service, settings, _topic = _service()
    created = await api.create_touchpoint(
        service,
        {"id": "library-desk", "touchpoint": {"name": "Kirjasto", "kpi_target": 4}},
        by="Aino",
    )
    assert created["touchpoint"] == {"name": "Kirjasto", "kpi_target": 4.0}
    assert settings.touchpoint("library-desk")[1]
    await api.edit_touchpoint(
        service, "library-desk", {"touchpoint": {"send_delay": "2h"}, "csat_target": 0.8}, by="B"
    )
    assert settings.catalogue.csat_targets["library-desk"] == 0.8
    await api.retire_touchpoint(service, "library-desk", {"comment": "closed"}, by="Aino")
    assert not settings.touchpoint("library-desk")[1]
    listed = {row["id"]: row for row in api.list_touchpoints(service)["touchpoints"]}
    assert listed["library-desk"]["retired"]
    await api.roll_back(service, "library-desk", {"version": created["version"]}, by="Aino")
    back, known = settings.touchpoint("library-desk")
    assert known
    assert back.send_delay.total_seconds() == 600
    history = api.touchpoint_history(service, "library-desk")["history"]
    assert [row["action"] for row in history] == ["create", "edit", "retire", "rollback"]
    edit = history[1]
    assert edit["by"] == "B"
    assert {change["field"]: change["after"] for change in edit["changes"]} == {
        "csat_target": 0.8,
        "send_delay": "2h",
    }
    assert history[2]["comment"] == "closed"
    assert {"field": "retired", "before": False, "after": True} in history[2]["changes"]


async def test_unknown_touchpoints_and_bad_bodies_are_4xx() -> None:
    """Bad input gets a 4xx with a reason, never a 5xx."""
    service, _settings, _topic = _service()
    with pytest.raises(ApiError) as unknown:
        api.get_touchpoint(service, "nowhere")
    assert unknown.value.status == 404
    with pytest.raises(ApiError) as exists:
        await api.create_touchpoint(service, {"id": PHONE, "touchpoint": {}}, by="A")
    assert exists.value.status == 409
    with pytest.raises(ApiError) as no_version:
        await api.roll_back(service, PHONE, {"version": "one"}, by="A")
    assert no_version.value.status == 400
    with pytest.raises(ApiError) as bad_id:
        await api.create_touchpoint(service, {"id": "has space", "touchpoint": {}}, by="A")
    assert bad_id.value.status == 422


async def test_the_worker_is_told_when_its_file_and_the_topic_differ() -> None:
    """An operator who edited the file but never imported it must hear that it is not in force."""
    from streams.catalogue import file_differs  # noqa: PLC0415 - the worker's start-up check

    service, settings, _topic = _service()
    assert not file_differs(service.follower, settings)
    await api.edit_touchpoint(service, PHONE, {"touchpoint": {"name": "Puhelin"}}, by="Aino")
    assert file_differs(service.follower, settings)


async def test_the_routes_want_an_operator_token_and_json_and_record_whose_token_acted() -> None:
    """Without a token nothing is shown; a browser form cannot post; the history names the token."""
    import hashlib  # noqa: PLC0415 - only here

    from aiohttp import web  # noqa: PLC0415 - only this test serves HTTP
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    from connectors.web import access, catalogue_routes  # noqa: PLC0415
    from connectors.web.alerts import OperatorTokens  # noqa: PLC0415
    from connectors.web.app import _errors  # noqa: PLC0415 - the service's error shape

    service, settings, _topic = _service()
    token = "route-test-operator-token-0123456789"
    digest = hashlib.sha256(token.encode()).hexdigest()
    app = web.Application(middlewares=[_errors])
    tokens = settings.web.model_copy(update={"ops_token_sha256": [digest]})
    access.setup(app, settings.model_copy(update={"web": tokens}))
    catalogue_routes.setup(app, service, OperatorTokens([digest]), follow=False)
    path = f"/v1/catalogue/touchpoints/{PHONE}"
    auth = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get(path)).status == 401
        form = await client.patch(path, data="touchpoint=x", headers=auth)
        assert form.status == 415
        edited = await client.patch(path, json={"touchpoint": {"name": "Puhelin"}}, headers=auth)
        assert edited.status == 200
        history = await (await client.get(path + "/history", headers=auth)).json()
        listed = await (await client.get("/v1/catalogue/touchpoints", headers=auth)).json()
    assert history["history"][-1]["by"] == f"operator token {digest[:8]}"
    # The seed made the touchpoint: it was never retired, so no change says it was.
    assert "retired" not in {change["field"] for change in history["history"][0]["changes"]}
    assert listed["version"] == settings.catalogue.version == 2
