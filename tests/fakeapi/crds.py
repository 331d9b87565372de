"""Custom resources for the fake API server: the Cluster Autoscaler's CapacityBuffer.

A CRD's objects are validated by kube-apiserver against the CRD's structural schema: unknown
fields are pruned (dropped), defaults applied, then the OpenAPI constraints and the CEL rules
(``x-kubernetes-validations``) checked; a violation is a 422 Invalid naming the field.
ref: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
("Field pruning", "Defaulting", "Validation rules").  ``admit_capacity_buffer`` does the same
with the schema in ``crds/capacitybuffers.v1beta1.yaml``; the two CEL rules are evaluated by
hand (there is no CEL here).  ``validate(..., strict=True)`` reports unknown fields instead of
pruning them, as ``fieldValidation=Strict`` does: what tests use to check an object we build.

Serving the type is opt-in (``with_capacity_buffers``): a default fake API server does not
serve the group, like a cluster without the CRD.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.fakeapi.store import ApiStore, ResourceType, StatusError, invalid

Obj = dict[str, Any]

CAPACITY_BUFFERS = ResourceType(
    "autoscaling.x-k8s.io", "v1beta1", "capacitybuffers", "CapacityBuffer", True
)
SCHEMA_FILE = Path(__file__).parent / "crds" / "capacitybuffers.v1beta1.yaml"


@cache
def capacity_buffer_schema() -> Obj:
    schema: Obj = yaml.safe_load(SCHEMA_FILE.read_text())
    return schema


def _has(obj: Obj, key: str) -> bool:
    return key in obj and obj[key] is not None


#: spec's x-kubernetes-validations, in the order of the CRD, as Python predicates.
_SPEC_RULES = {
    "!has(self.podTemplateRef) || has(self.replicas) || has(self.limits)": lambda s: (
        not _has(s, "podTemplateRef") or _has(s, "replicas") or _has(s, "limits")
    ),
    "!(has(self.podTemplateRef) && has(self.scalableRef))": lambda s: (
        not (_has(s, "podTemplateRef") and _has(s, "scalableRef"))
    ),
}


def _prune(node: Any, schema: Obj, path: str, unknown: list[str]) -> Any:
    """Drop (and record) fields the schema does not declare; apply defaults."""
    if not isinstance(node, dict) or schema.get("type") != "object":
        if isinstance(node, list) and isinstance(schema.get("items"), dict):
            return [_prune(v, schema["items"], f"{path}[{i}]", unknown) for i, v in enumerate(node)]
        return node
    if path == ".metadata" or "additionalProperties" in schema:
        return node  # metadata is the API server's own; maps keep every key
    props = schema.get("properties") or {}
    out = {}
    for key, value in node.items():
        if key in props:
            out[key] = _prune(value, props[key], f"{path}.{key}", unknown)
        else:
            unknown.append(f"{path}.{key}".lstrip("."))
    for key, sub in props.items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
    return out


def validate(obj: Obj, *, strict: bool = False) -> tuple[Obj, list[tuple[str, str]]]:
    """(the object as stored, [(field, problem)]): pruned and defaulted, then checked."""
    schema = capacity_buffer_schema()
    unknown: list[str] = []
    stored = _prune(obj, schema, "", unknown)
    causes = [(f, "field not declared in schema") for f in unknown] if strict else []
    for error in jsonschema.Draft7Validator(schema).iter_errors(stored):
        field = ".".join(str(p) for p in error.absolute_path) or "<root>"
        causes.append((field, error.message))
    spec = stored.get("spec")
    if isinstance(spec, dict):
        for rule, holds in _SPEC_RULES.items():
            if not holds(spec):
                message = next(
                    r["message"]
                    for r in schema["properties"]["spec"]["x-kubernetes-validations"]
                    if r["rule"] == rule
                )
                causes.append(("spec", f"Invalid value: {message}"))
    return stored, causes


def admit_capacity_buffer(name: str, obj: Obj) -> Obj:
    """The store's admission for CapacityBuffers: the object to store, or 422 Invalid."""
    stored, causes = validate(obj)
    if causes:
        raise invalid(CAPACITY_BUFFERS, name, causes)
    return stored


def with_capacity_buffers(store: ApiStore) -> ApiStore:
    """Serve CapacityBuffers from ``store`` (the CRD installed; with its status subresource,
    as the CRD declares: ``subresources: {status: {}}``)."""
    store.add_type(CAPACITY_BUFFERS, admit=admit_capacity_buffer, status_subresource=True)
    return store


__all__ = [
    "CAPACITY_BUFFERS",
    "StatusError",
    "admit_capacity_buffer",
    "validate",
    "with_capacity_buffers",
]
