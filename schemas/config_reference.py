"""The configuration reference, generated from the settings models.

``palaute config reference`` prints it and docs/configuration.md is its
committed copy (a test keeps the two equal), so the reference can never
describe a setting that does not exist or miss one that does.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from schemas.catalogue_reference import CATALOGUE_REFERENCE
from schemas.config import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings

_COLLECTIONS = {"touchpoints": "<touchpoint id>", "sources": "<system>", "teams": "<team id>"}


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """Find the model a field holds, if it is a section (possibly optional, or a map)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_name(annotation: Any) -> str:  # noqa: PLR0911 - one answer per kind of annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " or ".join(repr(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return " / ".join(str(member.value) for member in annotation)
        if annotation is SecretStr:
            return "secret string"
        if annotation is type(None):
            return "none"
        return annotation.__name__
    return str(annotation)


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, SecretStr):
        return "(secret)"
    text = "" if value is None else str(value)
    return f"`{text}`" if text else "none"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(model: type[BaseModel], toml_path: str, env_path: str, lines: list[str]) -> None:
    lines += [
        f"## `[{toml_path}]`",
        "",
        _escape((model.__doc__ or "").strip().split("\n\n")[0]),
        "",
        "| key | type | default | environment variable | meaning |",
        "|---|---|---|---|---|",
    ]
    nested: list[tuple[type[BaseModel], str, str]] = []
    for name, field in model.model_fields.items():
        sub = _section_model(field.annotation)
        if sub is not None and sub is not model:
            if name in _COLLECTIONS or typing.get_origin(field.annotation) is dict:
                placeholder = _COLLECTIONS.get(name, "<key>")
                nested.append((sub, f"{toml_path}.{name}.{placeholder}", ""))
            else:
                nested.append(
                    (sub, f"{toml_path}.{name}", f"{env_path}{ENV_NESTED_DELIMITER}{name}")
                )
            continue
        env = f"`{env_path}{ENV_NESTED_DELIMITER}{name}`".upper() if env_path else "—"
        lines.append(
            f"| `{name}` | {_escape(_type_name(field.annotation))} | {_escape(_default(field))} "
            f"| {env} | {_escape(field.description or '')} |"
        )
    lines.append("")
    for sub, toml_sub, env_sub in nested:
        _section(sub, toml_sub, env_sub, lines)


def reference_markdown() -> str:
    """Render every setting: its TOML key, type, default, variable and meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings models by `palaute config reference`; do not edit by hand.",
        f"Every key can also be set by an environment variable: `{ENV_PREFIX}` plus the",
        f"section and key joined by `{ENV_NESTED_DELIMITER}`, in upper case. The environment",
        "wins over the file. Check a file with `palaute config check FILE`.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        model = _section_model(field.annotation)
        if model is None:
            continue
        if name in _COLLECTIONS:
            _section(model, f"{name}.{_COLLECTIONS[name]}", "", lines)
        else:
            _section(model, name, f"{ENV_PREFIX}{name}", lines)
    lines.extend(CATALOGUE_REFERENCE.splitlines())
    return "\n".join(lines).rstrip() + "\n"
