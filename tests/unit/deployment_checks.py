"""What the docker-compose.yml and ops/kubernetes/ tests share.

The deployment files name settings by their environment variables
(``PALAUTE_SECRETS__LINK_SIGNING_KEY``) and hand Palaute a TOML file; both must
agree with what the code reads, or a container starts and dies. These helpers
look the names up in the real :class:`~schemas.config.Settings` model and run
the real ``palaute config check``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from aiohttp import web
from pydantic import BaseModel

from connectors.web import health
from schemas.catalogue import Catalogue, LiveCatalogue
from schemas.config import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings, TouchpointConfig

if TYPE_CHECKING:
    from collections.abc import Mapping

ROOT = Path(__file__).resolve().parents[2]
PALAUTE = Path(sys.executable).parent / "palaute"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION: str = PYPROJECT["project"]["version"]


def _unwrap(annotation: Any) -> list[Any]:
    """List the types an annotation may hold: ``X | None`` gives ``[X, None]``."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in {Union, types.UnionType}:
        return [inner for arg in typing.get_args(annotation) for inner in _unwrap(arg)]
    return [annotation]


def settings_field(env_name: str) -> bool:
    """Tell whether a ``PALAUTE_`` variable names a field of the settings.

    It follows pydantic-settings: the prefix, then section and key joined by
    ``__``, case-insensitive; a dict (``touchpoints``) takes any key.
    """
    if not env_name.upper().startswith(ENV_PREFIX):
        return False
    parts = env_name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
    candidates: list[Any] = [Settings]
    for part in parts:
        following: list[Any] = []
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                field = candidate.model_fields.get(part)
                if field is not None:
                    following.extend(_unwrap(field.annotation))
            elif typing.get_origin(candidate) is dict:
                following.extend(_unwrap(typing.get_args(candidate)[1]))
        if not following:
            return False
        candidates = following
    return True


def config_check(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``palaute config check`` with exactly these ``PALAUTE_`` variables."""
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    return subprocess.run(
        [str(PALAUTE), "config", "check", str(config)],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def web_routes() -> set[str]:
    """Collect the paths the web service's health module serves (probes must use one)."""
    app = web.Application()
    empty = LiveCatalogue(Catalogue(defaults=TouchpointConfig(), touchpoints={}))
    health.setup(app, stalled_after=timedelta(minutes=5), catalogue=empty)
    return {resource.canonical for resource in app.router.resources()}


def palaute_command_exists(command: str) -> bool:
    """Tell whether ``palaute COMMAND --help`` works, i.e. the command is registered."""
    done = subprocess.run(
        [str(PALAUTE), command, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode == 0


def option(args: list[str], name: str) -> str:
    """Give the value after ``name`` in an argument list."""
    return args[args.index(name) + 1]


_DAYS = re.compile(r"^(\d+) days$")


def retention_ms(retention: str) -> int | None:
    """Turn a topic's ``N days`` retention into milliseconds (None for other kinds)."""
    match = _DAYS.match(retention)
    return int(match.group(1)) * 86_400_000 if match else None
