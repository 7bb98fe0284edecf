"""Tripwires: every override of faust's or aiokafka's private state still fits the library.

An upgrade that renames a private attribute, or changes a method an override
replaces, fails here at once, naming the override and the fault test that
proves it is still needed, instead of silently in production.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from importlib import metadata
from typing import Any

import pytest

from streams.runtime.overrides import OVERRIDES, PINNED, Override


def _library_class(spec: str) -> Any:
    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name) if class_name else module


def _method_source(cls: Any, name: str) -> str:
    for klass in inspect.getmro(cls):
        if name in vars(klass):
            member = vars(klass)[name]
            if isinstance(member, property):
                member = member.fget
            return inspect.getsource(member)
    raise AttributeError(name)


def _has_private(owner: Any, name: str) -> bool:
    """Tell whether a class (or a module) has the name, as a member or as an instance attribute."""
    if hasattr(owner, name):
        return True
    if not inspect.isclass(owner):
        return False
    sources = []
    for klass in inspect.getmro(owner):
        if klass.__module__.split(".")[0] in {"faust", "aiokafka", "mode"}:
            try:
                sources.append(inspect.getsource(klass))
            except (OSError, TypeError):  # a compiled class has no source
                continue
    return any(f"self.{name} =" in source or f"self.{name}:" in source for source in sources)


@pytest.mark.parametrize(("distribution", "version"), sorted(PINNED.items()))
def test_the_installed_library_is_the_pinned_version(distribution: str, version: str) -> None:
    """The overrides are proven against one version; another needs the fault suite first."""
    assert metadata.version(distribution) == version, (
        f"{distribution} {metadata.version(distribution)} is installed; the overrides in "
        f"streams/runtime/overrides were proven on {version}. Run `make faults` and check "
        "every override below before moving the pin."
    )


def _replaced(override: Override) -> list[tuple[Override, str, str, str]]:
    return [(override, *entry) for entry in override.replaces]


@pytest.mark.parametrize(
    ("override", "owner", "method", "digest"),
    [entry for override in OVERRIDES for entry in _replaced(override)],
    ids=lambda value: value.name.rsplit(".", 1)[-1] if isinstance(value, Override) else str(value),
)
def test_every_replaced_library_method_is_unchanged(
    override: Override, owner: str, method: str, digest: str
) -> None:
    """A method we replace that changed upstream may carry a fix our copy lacks."""
    source = _method_source(_library_class(owner), method)
    found = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert found == digest, (
        f"{owner}.{method} changed upstream (source digest {found}, expected {digest}): "
        f"{override.name} replaces it. Read the new body, carry its changes over, then "
        f"update the digest; {override.proven_by} proves the override is needed."
    )


@pytest.mark.parametrize(
    ("override", "owner", "name"),
    [(override, owner, name) for override in OVERRIDES for owner, name in override.touches],
    ids=lambda value: value.name.rsplit(".", 1)[-1] if isinstance(value, Override) else str(value),
)
def test_every_private_name_an_override_touches_still_exists(
    override: Override, owner: str, name: str
) -> None:
    """A renamed private attribute would break the override silently, at run time."""
    assert _has_private(_library_class(owner), name), (
        f"{owner} has no {name!r} any more: {override.name} reads or writes it. "
        f"{override.proven_by} proves the override is needed."
    )


def test_every_override_module_is_listed() -> None:
    """An override added without an entry would escape the tripwires."""
    listed = {override.name.rsplit(".", 1)[0] for override in OVERRIDES} | {
        override.name for override in OVERRIDES
    }
    for module in ("producer", "consumer", "recovery", "app", "events", "refetch"):
        assert f"streams.runtime.overrides.{module}" in listed


def test_the_tripwire_notices_a_changed_body_and_a_missing_name() -> None:
    """The checks above must be able to fail, or they prove nothing."""
    probe = _method_source(_library_class("faust.tables.recovery:Recovery"), "_seek_offsets")
    assert hashlib.sha256((probe + " ").encode()).hexdigest()[:16] != "19598ca63d94d250"
    assert not _has_private(_library_class("faust.transport.consumer:Consumer"), "_no_such_thing")
    assert _has_private(_library_class("faust.transport.consumer:Consumer"), "_committed_offset")
