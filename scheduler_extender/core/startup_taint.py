"""When a node's startup taint may go: the decision the placeholder controller acts on.

New user nodes register with a taint under the Cluster Autoscaler's startup-taint prefix (CA >=
1.29 counts such a node as capacity on its way rather than as unusable; ref: kubernetes/autoscaler
``cluster-autoscaler/utils/taints/taints.go``, ``StartupTaintPrefix``). Users do not tolerate it,
so nobody is sent to a node that would make them wait for a multi-GB image pull; placeholders and
image pullers do. The taint may go once the node is ready for users: it reports every one of
the hub's images in ``status.images``, or the continuous image puller's pod on it is Ready (its
init containers have pulled each image).

Pure: plain values in, a decision out. Image names are compared as given, so callers normalize
them (``convert.normalize_image``) on both sides. The shell that reads nodes and writes the
patch is ``placeholders.startup_taint``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The Cluster Autoscaler's prefix for startup taints (the older ``ignore-taint.`` prefix
#: behaves the same).
STARTUP_TAINT_PREFIX = "startup-taint.cluster-autoscaler.kubernetes.io/"


@dataclass(frozen=True, slots=True)
class TaintDecision:
    """``remove`` the taint now or not, and why (for logs and tests); ``waiting``: the node
    carries the taint and is not ready for users yet."""

    remove: bool
    reason: str
    waiting: bool = False


def selected(labels: Mapping[str, str], node_selector: Mapping[str, str]) -> bool:
    """Whether a node with ``labels`` is one the removal loop looks after (every
    ``node_selector`` label equal; an empty selector selects every node)."""
    return all(labels.get(key) == value for key, value in node_selector.items())


def decide_startup_taint(
    *,
    taint_keys: Iterable[str],
    key: str,
    labels: Mapping[str, str],
    node_selector: Mapping[str, str],
    node_images: frozenset[str],
    wanted_images: frozenset[str],
    puller_ready: bool,
) -> TaintDecision:
    """Whether the startup taint ``key`` should be removed from a node now.

    ``taint_keys`` are the node's taint keys, ``node_images`` the images it reports,
    ``wanted_images`` the hub's images and ``puller_ready`` whether the continuous puller's pod
    on the node is Ready. With no wanted images only a Ready puller counts (the configuration
    refuses having neither).
    """
    if not selected(labels, node_selector):
        return TaintDecision(False, "not selected by nodeSelector")
    if key not in set(taint_keys):
        return TaintDecision(False, "no startup taint")
    if puller_ready:
        return TaintDecision(True, "image puller Ready on the node")
    if wanted_images:
        missing = sorted(wanted_images - node_images)
        if not missing:
            return TaintDecision(True, "every image present")
        why = f"waiting for {len(missing)} image(s): {', '.join(missing)}"
        return TaintDecision(False, why, waiting=True)
    return TaintDecision(False, "waiting for the image puller", waiting=True)


__all__ = ["STARTUP_TAINT_PREFIX", "TaintDecision", "decide_startup_taint", "selected"]
