"""The extender's settings: one object, every field documented, from CLI, env and a YAML file.

Precedence, highest first: command-line flags (``--port 9000``), environment variables
(``SCHEDULER_EXTENDER_PORT=9000``), the YAML file named by ``--config`` or
``SCHEDULER_EXTENDER_CONFIG`` (keys are the field names), then the defaults below.
``scheduler-extender serve --help`` lists every field.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from scheduler_extender.convert import PlaceholderRule
from scheduler_extender.core.policy import NodePurpose, Normalization, PolicyConfig

ENV_PREFIX = "SCHEDULER_EXTENDER_"
_config_file: ContextVar[Path | None] = ContextVar("_config_file", default=None)
_DEFAULT_POLICY = PolicyConfig()


class Settings(BaseSettings):
    """Settings of ``scheduler-extender serve``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="scheduler-extender serve",
        validate_default=True,
    )

    # --- service ---------------------------------------------------------------------------
    host: str = Field(
        "127.0.0.1",
        description="Address to listen on. The shipped chart runs the extender as a sidecar of "
        "kube-scheduler and keeps it on loopback.",
    )
    port: int = Field(8888, ge=1, le=65535, description="TCP port to listen on.")
    log_level: str = Field("info", description="Log level: debug, info, warning or error.")
    max_body_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted; larger ones get HTTP 400. Names mode needs "
        "little; full-node mode sends every candidate Node object (tens of KiB each).",
    )
    state_file: Path | None = Field(
        None,
        description="Serve from a cluster snapshot file (YAML or JSON: a kubectl List of Nodes "
        "and Pods, or {nodes: [...], pods: [...]}) instead of the live API. Empty: the live "
        "cluster when one is configured, else the embedded demo snapshot.",
    )

    # --- policy ----------------------------------------------------------------------------
    cpu_weight: int = Field(
        _DEFAULT_POLICY.cpu_weight, ge=0, description="Weight of cpu in the packing score."
    )
    memory_weight: int = Field(
        _DEFAULT_POLICY.memory_weight, ge=0, description="Weight of memory in the packing score."
    )
    placeholders_as_load: bool = Field(
        _DEFAULT_POLICY.placeholders_as_load,
        description="Count placeholder pods as load when packing (default: they are spare "
        "capacity that users preempt, not load).",
    )
    image_weight: float = Field(
        _DEFAULT_POLICY.image_weight,
        ge=0,
        description="Score bonus for a node holding all of the pod's images (packing spans 0..1).",
    )
    deletion_candidate_penalty: float = Field(
        _DEFAULT_POLICY.deletion_candidate_penalty,
        ge=0,
        description="Score penalty for nodes tainted DeletionCandidateOfClusterAutoscaler.",
    )
    match_node_purpose: NodePurpose = Field(
        _DEFAULT_POLICY.match_node_purpose,
        description="hub.jupyter.org/node-purpose=user nodes: ignore, prefer (score bonus) or "
        "require (filter; the pods must carry the same required affinity, as z2jh sets it, or "
        "the Cluster Autoscaler will disagree).",
    )
    purpose_weight: float = Field(
        _DEFAULT_POLICY.purpose_weight,
        ge=0,
        description="Score bonus for user-purpose nodes when match_node_purpose is prefer/require.",
    )
    normalization: Normalization = Field(
        _DEFAULT_POLICY.normalization,
        description="How raw scores become 0..10: rank (exact order of the best ten) or linear.",
    )
    prefer_older_nodes: bool = Field(
        _DEFAULT_POLICY.prefer_older_nodes,
        description="Break score ties toward older nodes (a First-Fit-like stable order).",
    )
    preempt_keep: int = Field(
        _DEFAULT_POLICY.preempt_keep,
        ge=0,
        description="Preemption candidates returned to the scheduler, best first (0: all).",
    )
    placeholder_labels: dict[str, str] = Field(
        default_factory=lambda: {"component": "user-placeholder"},
        description="A pod carrying any of these labels is a placeholder.",
    )
    placeholder_max_priority: int | None = Field(
        -10,
        description="A pod with priority at or below this is a placeholder (null: labels only).",
    )

    def policy(self) -> PolicyConfig:
        """The core policy these settings describe."""
        return PolicyConfig(
            cpu_weight=self.cpu_weight,
            memory_weight=self.memory_weight,
            placeholders_as_load=self.placeholders_as_load,
            image_weight=self.image_weight,
            deletion_candidate_penalty=self.deletion_candidate_penalty,
            match_node_purpose=self.match_node_purpose,
            purpose_weight=self.purpose_weight,
            normalization=self.normalization,
            prefer_older_nodes=self.prefer_older_nodes,
            preempt_keep=self.preempt_keep,
        )

    def placeholder_rule(self) -> PlaceholderRule:
        return PlaceholderRule(dict(self.placeholder_labels), self.placeholder_max_priority)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(argv: Sequence[str] = (), cls: type[Settings] = Settings) -> Settings:
    """Settings from ``argv`` (flags), the environment and an optional YAML file."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, rest = pre.parse_known_args(list(argv))
    path = known.config or (
        Path(os.environ[ENV_PREFIX + "CONFIG"]) if os.environ.get(ENV_PREFIX + "CONFIG") else None
    )
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    token = _config_file.set(path)
    try:
        return cls(_cli_parse_args=rest)
    finally:
        _config_file.reset(token)
