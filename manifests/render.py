"""Regenerate the chart's values.schema.json and the plain manifests, with the real Helm engine.

    python manifests/render.py           # write manifests/chart/values.schema.json and
                                         # manifests/scheduler-extender.yaml
    python manifests/render.py --check   # exit 1 (and say which) if either is stale

``make manifests`` runs the first; the test suite runs the check, so CI fails when a chart
change was not followed by a regeneration. Rendering goes through ``helm-python-sdk``, which
embeds Helm's own Go SDK: the templates, ``values.schema.json`` validation and value
coalescing are exactly ``helm template``'s, offline.

The chart is built from its own files, with one exception: the schema of
``scheduling.userScheduler.extender.settings`` (the extender's ``SCHEDULER_EXTENDER_<FIELD>``
variables) is generated from ``scheduler_extender.extender.settings.Settings``, every field
with its type, bounds and description and no other key, so a misspelled or removed setting fails
``helm install`` instead of being ignored, and the list cannot drift from the code (``--check``
sees a changed field).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native as helm_native

from scheduler_extender.extender.settings import Settings

HERE = Path(__file__).resolve().parent
CHART = HERE / "chart"
SCHEMA_SOURCE = HERE / "values.schema.yaml"
SCHEMA_JSON = CHART / "values.schema.json"
PLAIN_VALUES = HERE / "values" / "plain.yaml"
PLAIN_MANIFEST = HERE / "scheduler-extender.yaml"

#: The release the plain manifests are rendered as (README's kubectl commands use them).
PLAIN_RELEASE = "scheduler-extender"
PLAIN_NAMESPACE = "jupyterhub"
#: The Kubernetes version the plain manifests are rendered for, which sets their kube-scheduler
#: tag: the oldest minor the chart supports (Chart.yaml kubeVersion) at its last patch
#: (CHANGELOG/CHANGELOG-1.30.md; z2jh 4.x runs the same image). kube-scheduler must not be newer
#: than the API server (https://kubernetes.io/releases/version-skew-policy/), so the oldest
#: supported release is the one that is never wrong in that direction; README's kubectl
#: commands set the cluster's own version.
PLAIN_KUBE_VERSION = "v1.30.14"

#: kubectl applies a multi-document file in order: things referenced before their users.
KIND_ORDER = [
    "Namespace",
    "PriorityClass",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "PodDisruptionBudget",
    "DaemonSet",
    "Deployment",
    "Job",
]


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``helm -f a.yaml -f b.yaml``: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_values(files: Iterable[Path], sets: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Values from YAML files in order, then ``--set`` style overrides (already parsed)."""
    values: dict[str, Any] = {}
    for path in files:
        values = merge_values(values, yaml.safe_load(Path(path).read_text()) or {})
    if sets:
        values = merge_values(values, sets)
    return values


def render(
    values: Mapping[str, Any],
    *,
    release: str = PLAIN_RELEASE,
    namespace: str = PLAIN_NAMESPACE,
    upgrade: bool = False,
    kube_version: str | None = None,
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` (or an install/upgrade) renders.

    ``kube_version`` is ``helm template --kube-version``: the cluster version templates see as
    ``.Capabilities.KubeVersion`` (None: Helm's built-in default). ``Chart.render`` of
    helm-python-sdk 0.2 does not expose it, but the native ``helm_render`` it calls accepts it
    in its options (``kube_version``, next to ``name``, ``namespace``, ``is_install``...), so
    this passes it there. A test checks that both paths render the same chart identically.
    """
    with helm.Chart.load(str(CHART)) as chart:
        if kube_version is None:
            return chart.render(
                dict(values),
                name=release,
                namespace=namespace,
                is_install=not upgrade,
                is_upgrade=upgrade,
            )
        options = {
            "name": release,
            "namespace": namespace,
            "is_install": not upgrade,
            "is_upgrade": upgrade,
            "kube_version": kube_version,
        }
        out = helm_native.call_string(
            "helm_render", chart._raw(), json.dumps(dict(values)), json.dumps(options)
        )
    rendered: dict[str, str] = json.loads(out)
    return rendered


def documents(rendered: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object in a render, with the template it came from."""
    out: list[tuple[str, dict[str, Any]]] = []
    for source in sorted(rendered):
        if source.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(rendered[source]):
            if doc:
                out.append((source, doc))
    return out


def _sort_key(item: tuple[str, dict[str, Any]]) -> tuple[int, str, str]:
    source, obj = item
    kind = obj.get("kind", "")
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, obj.get("metadata", {}).get("name", ""), source


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` block scalars, as the chart's templates do.

    PyYAML's default would print a ConfigMap's ``config.yaml`` as one long quoted string full of
    ``\\n``; a block is what a reader (and ``kubectl diff``) can follow. PyYAML itself falls
    back to a quoted style when a string cannot be a block (e.g. trailing spaces).
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_object(obj: Mapping[str, Any]) -> str:
    """One Kubernetes object as YAML: keys in template order, multi-line strings as blocks."""
    return yaml.dump(
        dict(obj), Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=100
    )


def plain_manifest() -> str:
    """The kubectl-ready manifest: the chart rendered with values/plain.yaml, hooks off."""
    values = load_values([PLAIN_VALUES])
    docs = sorted(documents(render(values, kube_version=PLAIN_KUBE_VERSION)), key=_sort_key)
    header = (
        "# scheduler-extender: plain Kubernetes manifests for `kubectl apply`.\n"
        "# GENERATED by `make manifests` (manifests/render.py) from manifests/chart with\n"
        f"# manifests/values/plain.yaml, release {PLAIN_RELEASE!r}, namespace "
        f"{PLAIN_NAMESPACE!r}, for Kubernetes\n"
        f"# {PLAIN_KUBE_VERSION}: kube-scheduler runs {PLAIN_KUBE_VERSION}, the oldest release "
        "the chart supports. Set it to\n"
        "# your API server's version (README: Install on a cluster); kube-scheduler must not "
        "be newer\n"
        "# than the API server. Do not edit; for other settings or another namespace, render "
        "the\n"
        "# chart yourself: helm template ... --kube-version <your cluster's version>.\n"
    )
    parts = [header]
    for source, obj in docs:
        body = dump_object(obj)
        template = source.split("/", 1)[1] if "/" in source else source
        parts.append(f"---\n# Source: {template}\n{body}")
    return "".join(parts)


#: The key that marks, in values.schema.yaml, an object whose properties come from a class.
GENERATED_MARKER = "x-generated-from"
SETTINGS_CLASS = "scheduler_extender.extender.settings.Settings"

#: JSON-schema keywords kept from pydantic's schema of a field (``title`` and ``format: path``
#: are noise in a values schema; ``default`` documents).
_KEPT_KEYWORDS = {
    "type", "enum", "const", "anyOf", "items", "additionalProperties", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "description",
    "default",
}  # fmt: skip


def settings_properties() -> dict[str, Any]:
    """One schema property per field of the extender's Settings, as pydantic types it."""
    model = Settings.model_json_schema()
    definitions = model.get("$defs", {})
    return {
        name: _schema_subset(_inline_refs(field, definitions))
        for name, field in model["properties"].items()
    }


def _inline_refs(node: Any, definitions: Mapping[str, Any]) -> Any:
    """Replace pydantic's ``$ref: #/$defs/X`` by X itself (the values schema has its own
    ``definitions``); keys next to the ``$ref`` (the field's description) win. Older pydantic
    (2.7, our floor) wraps such a ``$ref`` in a one-item ``allOf``; that is unwrapped first."""
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and set(all_of[0]) == {"$ref"}:
        node = {**{k: v for k, v in node.items() if k != "allOf"}, "$ref": all_of[0]["$ref"]}
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return {key: _inline_refs(value, definitions) for key, value in node.items()}


def _schema_subset(node: Any) -> Any:
    if isinstance(node, list):
        return [_schema_subset(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {k: _schema_subset(v) for k, v in node.items() if k in _KEPT_KEYWORDS}


def _fill_generated(node: Any) -> int:
    """Fill every object marked with GENERATED_MARKER; returns how many were filled."""
    filled = 0
    if isinstance(node, dict):
        source = node.pop(GENERATED_MARKER, None)
        if source is not None:
            if source != SETTINGS_CLASS:
                raise ValueError(f"{GENERATED_MARKER}: unknown source {source!r}")
            node["properties"] = settings_properties()
            node["additionalProperties"] = False
            filled += 1
        for value in node.values():
            filled += _fill_generated(value)
    elif isinstance(node, list):
        for item in node:
            filled += _fill_generated(item)
    return filled


def schema_json() -> str:
    """values.schema.json from its commented YAML source, generated parts filled in."""
    schema = yaml.safe_load(SCHEMA_SOURCE.read_text())
    if _fill_generated(schema) != 1:
        raise ValueError(f"values.schema.yaml must mark one object with {GENERATED_MARKER}")
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    # The schema first: rendering validates the plain values against it.
    return {SCHEMA_JSON: schema_json(), PLAIN_MANIFEST: plain_manifest()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        # Compared as JSON, not text: pydantic versions differ in spelling (0 vs 0.0), not meaning.
        stale = [] if _same_json(_read(SCHEMA_JSON), schema_json()) else [SCHEMA_JSON]
        if not stale and _read(PLAIN_MANIFEST) != plain_manifest():
            stale.append(PLAIN_MANIFEST)
        for path in stale:
            print(f"stale: {path.relative_to(HERE.parent)} (run `make manifests`)", file=sys.stderr)
        return 1 if stale else 0
    SCHEMA_JSON.write_text(schema_json())
    PLAIN_MANIFEST.write_text(plain_manifest())
    for path in (SCHEMA_JSON, PLAIN_MANIFEST):
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _same_json(text: str | None, expected: str) -> bool:
    try:
        return text is not None and json.loads(text) == json.loads(expected)
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
