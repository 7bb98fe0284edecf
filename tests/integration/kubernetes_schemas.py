"""kubeconform and the Kubernetes JSON schemas it checks against, built offline.

kubeconform normally downloads its schemas from a GitHub repository, which
CI cannot reach. Both pieces come from the Go module proxy instead:

* kubeconform itself, ``go install``-ed at a pinned version;
* the OpenAPI description of the Kubernetes API, which the ``k8s.io/kubernetes``
  module ships (``api/openapi-spec/swagger.json``) at a pinned release.

:func:`write_schemas` turns that description into one JSON schema per kind,
the way kubeconform's own schemas are made (openapi2jsonschema, "standalone
strict"): every object refuses properties it does not define, an
int-or-string accepts both, a quantity accepts a string or a number, and
``kind`` and ``apiVersion`` must be the schema's own. Everything is cached
under the user's cache directory, keyed by version.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform"
KUBECONFORM_VERSION = "v0.8.0"
KUBERNETES_MODULE = "k8s.io/kubernetes"
KUBERNETES_VERSION = "1.34.4"

_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_REF_PREFIX = "#/definitions/"
_INSTALL_TIMEOUT = 900


def tools_dir() -> Path:
    """Where the project's downloaded tools live (XDG cache, like the Kafka jars)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "palaute" / "tools"


def _go() -> str:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise RuntimeError("the Go toolchain is needed to install kubeconform (go not found)")
    return go


def _run_go(*args: str, env: dict[str, str] | None = None) -> str:
    cwd = tools_dir()
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [_go(), *args],
        cwd=cwd,  # outside any module: `go install x@v` and `go mod download x@v` need that
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=_INSTALL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def installed_version(binary: Path) -> str | None:
    """Read the module version a Go binary was built from (``go version -m``).

    ``kubeconform -v`` says "development" for a ``go install``-ed build: the
    release builds set the version with linker flags, ``go install`` does not.
    """
    if not binary.exists():
        return None
    shown = _run_go("version", "-m", str(binary))
    for line in shown.splitlines():
        fields = line.split()
        if fields[:2] == ["mod", KUBECONFORM_MODULE.removesuffix("/cmd/kubeconform")]:
            return fields[2]
    return None


def ensure_kubeconform() -> Path:
    """Install the pinned kubeconform into the tools cache unless it is there already."""
    bin_dir = tools_dir() / "bin"
    binary = bin_dir / "kubeconform"
    if installed_version(binary) != KUBECONFORM_VERSION:
        _run_go(
            "install", f"{KUBECONFORM_MODULE}@{KUBECONFORM_VERSION}", env={"GOBIN": str(bin_dir)}
        )
    return binary


def download_module(module: str, version: str) -> Path:
    """Download a Go module's source from the module proxy (or find it cached); its folder."""
    shown = _run_go("mod", "download", "-json", f"{module}@{version}")
    return Path(json.loads(shown)["Dir"])


def kubernetes_openapi() -> Path:
    """Download (or find in the module cache) the pinned Kubernetes API description."""
    module_dir = download_module(KUBERNETES_MODULE, f"v{KUBERNETES_VERSION}")
    return module_dir / "api" / "openapi-spec" / "swagger.json"


def kind_suffix(api_version: str) -> str:
    """Name a schema file the way kubeconform looks it up (``{{ .KindSuffix }}``)."""
    group, _, version = api_version.rpartition("/")
    if not group:
        return f"-{version.lower()}"
    return f"-{group.split('.')[0].lower()}-{version.lower()}"


def _strict(node: Any) -> Any:
    """Rewrite one OpenAPI node (and everything in it) into strict JSON schema."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string":
        description = node.get("description", "")
        return {"description": description, "oneOf": [{"type": "string"}, {"type": "integer"}]}
    properties = node.get("properties")
    converted = {key: _strict(value) for key, value in node.items() if key != "properties"}
    if isinstance(properties, dict):
        # A map of field names, not a schema: convert each field's schema.
        converted["properties"] = {name: _strict(value) for name, value in properties.items()}
        converted.setdefault("additionalProperties", False)
    return converted


def _references(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        found.add(ref.removeprefix(_REF_PREFIX))
    for value in node.values():
        found |= _references(value)
    return found


def _reachable(name: str, definitions: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(_references(definitions[current]) - seen)
    return {key: definitions[key] for key in sorted(seen)}


def write_schemas(swagger: dict[str, Any], out: Path) -> int:
    """Write one strict, self-contained schema per API kind; return how many."""
    definitions = {name: _strict(node) for name, node in swagger["definitions"].items()}
    definitions[_INT_OR_STRING] = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    definitions[_QUANTITY] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, source in swagger["definitions"].items():
        for gvk in source.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            api_version = f"{group}/{version}" if group else version
            schema = copy.deepcopy(definitions[name])
            properties = schema.get("properties", {})
            if "kind" in properties:
                properties["kind"] = {"type": "string", "enum": [kind]}
            if "apiVersion" in properties:
                properties["apiVersion"] = {"type": "string", "enum": [api_version]}
            schema["definitions"] = _reachable(name, definitions)
            target = out / f"{kind.lower()}{kind_suffix(api_version)}.json"
            target.write_text(json.dumps(schema), encoding="utf-8")
            written += 1
    return written


def ensure_schemas() -> Path:
    """Build the schemas for the pinned Kubernetes release once; return their folder."""
    folder = tools_dir() / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-standalone-strict"
    done = folder / ".complete"
    if not done.exists():
        swagger = json.loads(kubernetes_openapi().read_text(encoding="utf-8"))
        count = write_schemas(swagger, folder)
        done.write_text(f"{count}\n", encoding="utf-8")
    return folder


def schema_location(folder: Path) -> str:
    """Give kubeconform's ``-schema-location`` template for a folder of our schemas."""
    return str(folder / "{{ .ResourceKind }}{{ .KindSuffix }}.json")
