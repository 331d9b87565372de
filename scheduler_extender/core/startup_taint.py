"""The startup taint of user nodes: which taints the Cluster Autoscaler treats as "starting up",
and when ours may come off a node.  A pure decision; the controller patches the node, the
simulator replaces its model node.

Why: a user node is Ready long before it holds the hub's multi-GB images, and kube-scheduler
never preempts while any node fits, so without a taint the next user lands on the new empty node
and waits for the pull, although a placeholder on a node that has the image could have made room
at once.  With the taint (NoSchedule), user pods do not fit there: they preempt a placeholder on
a ready node instead, while placeholders and image pullers (which tolerate it) use the new node.

Cluster Autoscaler (>= 1.29) treats a taint whose key starts with
``startup-taint.cluster-autoscaler.kubernetes.io/`` (or the older ``ignore-taint.`` prefix, or a
key given with ``--startup-taint``) as a node that is starting up: it marks such a node unready
in its snapshot (``FilterOutNodesWithStartupTaints``) and leaves the taint out of the template
node it builds from the group (``SanitizeTaints``), so pods that do not tolerate the taint still
count as fitting the node group and the node counts as upcoming capacity while it is younger
than ``MaxNodeStartupTime`` (15 minutes; clusterstate ``NotStarted``), not as room to add more
nodes for.  ref: kubernetes/autoscaler cluster-autoscaler/utils/taints/taints.go
(``StartupTaintPrefix``, ``IgnoreTaintPrefix``, ``FilterOutNodesWithStartupTaints``,
``SanitizeTaints``) and cluster-autoscaler/clusterstate/clusterstate.go
(``updateReadinessStats``, ``GetUpcomingNodes``).

Removal rule (``startup_taint_decision``): the taint comes off when the node holds every
required image (``node.status.images``, names as ``convert.normalize_image`` gives them), or
when the continuous image puller's pod on the node is Ready (its init containers pulled every
image), or, as a safety valve, ``max_wait`` seconds after the node became Ready: a node that can
never pull an image must not stay unusable (and invisible as capacity to the autoscaler after
15 minutes) forever.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from scheduler_extender.core.types import Taint, Toleration

#: ref: kubernetes/autoscaler cluster-autoscaler/utils/taints/taints.go StartupTaintPrefix.
STARTUP_TAINT_PREFIX = "startup-taint.cluster-autoscaler.kubernetes.io/"
#: The older prefix, treated the same (taints.go IgnoreTaintPrefix).
IGNORE_TAINT_PREFIX = "ignore-taint.cluster-autoscaler.kubernetes.io/"
#: The key this project documents for user node pools.
DEFAULT_STARTUP_TAINT_KEY = STARTUP_TAINT_PREFIX + "hub-images"
#: Cluster Autoscaler's MaxNodeStartupTime (clusterstate.go): an unready node younger than this
#: is "not started" (upcoming capacity); older, it is unready.
CA_MAX_NODE_STARTUP_SECONDS = 900.0


def is_startup_taint(key: str, extra_keys: Collection[str] = ()) -> bool:
    """Whether the Cluster Autoscaler treats a taint key as a startup taint: one of its two
    prefixes, or a key it was given with ``--startup-taint`` (``extra_keys``)."""
    return key.startswith((STARTUP_TAINT_PREFIX, IGNORE_TAINT_PREFIX)) or key in extra_keys


def has_startup_taint(taints: Iterable[Taint], extra_keys: Collection[str] = ()) -> bool:
    return any(is_startup_taint(t.key, extra_keys) for t in taints)


def startup_taint(key: str = DEFAULT_STARTUP_TAINT_KEY) -> Taint:
    """The taint a user node registers with (``--register-with-taints=KEY=true:NoSchedule``)."""
    return Taint(key, "true", "NoSchedule")


def startup_toleration(key: str = DEFAULT_STARTUP_TAINT_KEY) -> Toleration:
    """What placeholders and image pullers carry: any value of the key, NoSchedule."""
    return Toleration(key, "Exists", "", "NoSchedule")


def without_taint(taints: Iterable[Taint], key: str) -> tuple[Taint, ...]:
    """``taints`` less every taint with ``key``, the others in their order (what a patch that
    must not clobber other taints writes back)."""
    return tuple(t for t in taints if t.key != key)


@dataclass(frozen=True, slots=True)
class TaintDecision:
    """Whether to remove the startup taint now, and why (for logs and metrics).  ``missing``
    lists the required images the node does not report yet."""

    remove: bool
    reason: str
    missing: tuple[str, ...] = ()


def startup_taint_decision(
    taints: Iterable[Taint],
    node_images: Collection[str],
    required_images: Collection[str],
    *,
    key: str = DEFAULT_STARTUP_TAINT_KEY,
    puller_ready: bool = False,
    ready_since: float | None = None,
    now: float | None = None,
    max_wait: float | None = None,
) -> TaintDecision:
    """Should the startup taint ``key`` come off this node now?

    - The node does not carry ``key``: no (nothing to remove).
    - The node holds every one of ``required_images``: yes.  With no required image, only the
      puller's readiness (or the timeout) can release the node.
    - ``puller_ready`` (the continuous puller's pod on the node is Ready): yes.
    - ``max_wait`` given and the node has been Ready (since ``ready_since``) for at least that
      long at ``now``: yes, with a reason that says the images never arrived.
    - Otherwise no, with the missing images.
    """
    if not any(t.key == key for t in taints):
        return TaintDecision(False, "no startup taint")
    missing = tuple(sorted(set(required_images) - set(node_images)))
    if required_images and not missing:
        return TaintDecision(True, "images present")
    if puller_ready:
        return TaintDecision(True, "image puller ready", missing)
    if (
        max_wait is not None
        and ready_since is not None
        and now is not None
        and now - ready_since >= max_wait
    ):
        return TaintDecision(True, f"timed out after {max_wait:.0f} s without the images", missing)
    if not required_images:
        return TaintDecision(False, "waiting for the image puller")
    return TaintDecision(False, "waiting for images", missing)
