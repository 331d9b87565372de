"""Settings: flags over environment over YAML file over defaults; every field documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from scheduler_extender.core.policy import NodePurpose, Normalization, PolicyConfig
from scheduler_extender.extender.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SCHEDULER_EXTENDER_"):
            monkeypatch.delenv(key)


def test_defaults_match_the_core_policy_defaults() -> None:
    assert load_settings([]).policy() == PolicyConfig()


def test_precedence_flag_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "extender.yaml"
    config.write_text("port: 7000\ncpu_weight: 3\nmemory_weight: 4\nnormalization: linear\n")
    monkeypatch.setenv("SCHEDULER_EXTENDER_CPU_WEIGHT", "5")
    monkeypatch.setenv("SCHEDULER_EXTENDER_PORT", "7001")
    settings = load_settings(["--config", str(config), "--port", "7002"])
    assert settings.port == 7002  # flag beats env and file
    assert settings.cpu_weight == 5  # env beats file
    assert settings.memory_weight == 4  # file beats default
    assert settings.normalization is Normalization.LINEAR


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "extender.yaml"
    config.write_text("match_node_purpose: require\n")
    monkeypatch.setenv("SCHEDULER_EXTENDER_CONFIG", str(config))
    assert load_settings([]).match_node_purpose is NodePurpose.REQUIRE


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--port", "70000"], "port"),
        (["--cpu-weight", "-1"], "cpu_weight"),
        (["--match-node-purpose", "sometimes"], "match_node_purpose"),
    ],
    ids=["port-range", "negative-weight", "bad-enum"],
)
def test_invalid_flags_name_the_field(
    argv: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises((ValidationError, SystemExit)) as err:
        load_settings(argv)
    text = str(err.value) + capsys.readouterr().err
    assert field in text


def test_unknown_keys_in_the_file_are_rejected(tmp_path: Path) -> None:
    config = tmp_path / "extender.yaml"
    config.write_text("cpu_wieght: 3\n")
    with pytest.raises(ValidationError, match="cpu_wieght"):
        load_settings(["--config", str(config)])


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(["--config", str(tmp_path / "nope.yaml")])


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_placeholder_rule_from_settings() -> None:
    settings = load_settings(["--placeholder-labels", '{"role": "spare"}'])
    rule = settings.placeholder_rule()
    assert rule.matches({"role": "spare"}, 0)
    assert not rule.matches({"component": "user-placeholder"}, 0)
    assert rule.matches({}, -10)


def test_misspelt_environment_settings_refuse_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler_extender.extender.settings import UnknownSettingError

    monkeypatch.setenv("SCHEDULER_EXTENDER_CPU_WEIGTH", "2")
    with pytest.raises(UnknownSettingError, match="did you mean SCHEDULER_EXTENDER_CPU_WEIGHT"):
        load_settings([])


def test_service_link_variables_are_not_mistaken_for_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the kubelet injects for a Service named "scheduler-extender-webhook" (the chart turns
    # service links off; a Service whose variables name a real setting would still collide).
    monkeypatch.setenv("SCHEDULER_EXTENDER_WEBHOOK_SERVICE_HOST", "10.0.0.7")
    monkeypatch.setenv("SCHEDULER_EXTENDER_WEBHOOK_SERVICE_PORT", "8888")
    monkeypatch.setenv("SCHEDULER_EXTENDER_WEBHOOK_PORT_8888_TCP_ADDR", "10.0.0.7")
    monkeypatch.setenv("SCHEDULER_EXTENDER_WEBHOOK_PORT", "tcp://10.0.0.7:8888")
    assert load_settings([]).port == 8888


@pytest.mark.parametrize(
    ("name", "value"),
    [("SCHEDULER_EXTENDER_IMAGE_WEIGHT", "inf"), ("SCHEDULER_EXTENDER_PURPOSE_WEIGHT", "nan"),
     ("SCHEDULER_EXTENDER_LOG_LEVEL", "loud")],
    ids=["inf", "nan", "log-level"],
)  # fmt: skip
def test_non_finite_numbers_and_bad_log_levels_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        load_settings([])


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_EXTENDER_LOG_LEVEL", "WARNING")
    assert load_settings([]).log_level == "warning"


def test_help_lists_the_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(["--help"])
    assert "--config" in capsys.readouterr().out
