"""kube-scheduler extender v1 wire types: what the scheduler sends and what we answer.

Field names are the Go struct field names, exactly: the upstream structs carry no json tags, so
``encoding/json`` uses ``Pod``, ``NodeNames``, ``FailedAndUnresolvableNodes``...  Go decodes our
replies case-insensitively, but we emit the exact names anyway.  Nested ``Pod``/``Node`` objects are
ordinary Kubernetes JSON; they are kept as plain dicts here and read by ``convert``, which looks
only at the fields the policy uses.

ref: staging/src/k8s.io/kube-scheduler/extender/v1/types.go (v1.36) and
pkg/scheduler/extender.go (how the scheduler encodes requests and decodes replies).

What the scheduler sends, which these models accept:
- ``NodeNames`` (``nodeCacheCapable: true``) *or* ``Nodes`` (a ``v1.NodeList``), the other null;
  ``Nodes.items`` may be null when there are no nodes.
- ``NodeNameToMetaVictims`` (nodeCacheCapable) *or* ``NodeNameToVictims`` for preemption.
- Unknown keys are ignored, as Go would.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

JSONObject = dict[str, Any]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class NodeList(_Wire):
    """A ``v1.NodeList``; only ``items`` matters."""

    items: list[JSONObject] | None = None


class ExtenderArgs(_Wire):
    """Arguments of ``filter`` and ``prioritize``."""

    Pod: JSONObject = Field(description="The pod being scheduled (a v1.Pod object).")
    Nodes: NodeList | None = Field(
        default=None, description="Candidate nodes; only when nodeCacheCapable is false."
    )
    NodeNames: list[str] | None = Field(
        default=None, description="Candidate node names; only when nodeCacheCapable is true."
    )

    @model_validator(mode="after")
    def _one_node_form(self) -> ExtenderArgs:
        if self.Nodes is None and self.NodeNames is None:
            raise ValueError("one of Nodes or NodeNames is required")
        if self.Nodes is not None and self.NodeNames is not None:
            raise ValueError("Nodes and NodeNames are mutually exclusive; send one")
        return self

    def node_items(self) -> list[JSONObject]:
        return (self.Nodes.items or []) if self.Nodes is not None else []


class ExtenderFilterResult(_Wire):
    """Reply to ``filter``.  Exactly one of ``Nodes``/``NodeNames`` is set, matching the request."""

    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None
    FailedNodes: dict[str, str] = Field(default_factory=dict)
    FailedAndUnresolvableNodes: dict[str, str] = Field(default_factory=dict)
    Error: str = ""


class HostPriority(_Wire):
    Host: str
    Score: int = Field(ge=0, le=10)


class HostPriorityList(RootModel[list[HostPriority]]):
    """Reply to ``prioritize``: a bare JSON array, not an object."""


class MetaPod(_Wire):
    UID: str


class MetaVictims(_Wire):
    Pods: list[MetaPod] | None = None
    NumPDBViolations: int = 0


class Victims(_Wire):
    Pods: list[JSONObject] | None = None
    NumPDBViolations: int = 0


class ExtenderPreemptionArgs(_Wire):
    """Arguments of ``preempt``."""

    Pod: JSONObject = Field(description="The preemptor pod (a v1.Pod object).")
    NodeNameToVictims: dict[str, Victims | None] | None = Field(
        default=None, description="Candidates with full victim pods (nodeCacheCapable false)."
    )
    NodeNameToMetaVictims: dict[str, MetaVictims | None] | None = Field(
        default=None, description="Candidates with victim UIDs only (nodeCacheCapable true)."
    )

    @model_validator(mode="after")
    def _one_victims_form(self) -> ExtenderPreemptionArgs:
        if self.NodeNameToVictims is not None and self.NodeNameToMetaVictims is not None:
            raise ValueError("NodeNameToVictims and NodeNameToMetaVictims are mutually exclusive")
        return self


class ExtenderPreemptionResult(_Wire):
    NodeNameToMetaVictims: dict[str, MetaVictims] = Field(default_factory=dict)


class ExtenderBindingArgs(_Wire):
    PodName: str
    PodNamespace: str
    PodUID: str
    Node: str


class ExtenderBindingResult(_Wire):
    Error: str = ""
