"""The pure policy core: plain values in, plain values out.

No I/O, no clock, no randomness, no Kubernetes, FastAPI or pydantic imports (enforced by the
import-linter contract in pyproject.toml).  The HTTP service and the simulator both call these
functions on the same ``Snapshot`` type, so what the simulator measures is what the service does.
"""

from scheduler_extender.core.filtering import FilterOutcome, Verdict, check_node, filter_nodes
from scheduler_extender.core.policy import NodePurpose, Normalization, PolicyConfig
from scheduler_extender.core.preemption import Candidate, choose_candidates, classify_victims
from scheduler_extender.core.scoring import ScoreOutcome, normalize, raw_score, score_nodes
from scheduler_extender.core.snapshot import (
    build_snapshot,
    empty_snapshot,
    node_info,
    with_pod,
    without_pod,
)
from scheduler_extender.core.types import (
    Node,
    NodeInfo,
    Pod,
    Requirement,
    Resources,
    SelectorTerm,
    Snapshot,
    Taint,
    Toleration,
)

__all__ = [
    "Candidate",
    "FilterOutcome",
    "Node",
    "NodeInfo",
    "NodePurpose",
    "Normalization",
    "Pod",
    "PolicyConfig",
    "Requirement",
    "Resources",
    "ScoreOutcome",
    "SelectorTerm",
    "Snapshot",
    "Taint",
    "Toleration",
    "Verdict",
    "build_snapshot",
    "check_node",
    "choose_candidates",
    "classify_victims",
    "empty_snapshot",
    "filter_nodes",
    "node_info",
    "normalize",
    "raw_score",
    "score_nodes",
    "with_pod",
    "without_pod",
]
