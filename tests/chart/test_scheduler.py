"""The user-scheduler: its KubeSchedulerConfiguration, the extender's weight, and the sidecar.

The configuration is checked against the upstream v1 types and validation rules
(tests/chart/kubescheduler.py), the weight against the arithmetic in docs/install.md, and the
extender's environment against the real ``Settings`` class it configures.
"""

from __future__ import annotations

import copy
import http.server
import os
import re
import subprocess
import sys
import threading
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender import cli
from scheduler_extender.extender.settings import ENV_PREFIX, Settings, load_settings
from tests.chart import kubescheduler
from tests.chart.conftest import VALUES_SETS, Obj, one, render_values, rendered, values_for

SCHEDULER = "hub-sched-scheduler-extender-user-scheduler"
BIND_ENV = ENV_PREFIX + "BIND_ENABLED"

#: Score plugin weights kube-scheduler uses when a profile does not set them
#: (ref: kubernetes pkg/scheduler/apis/config/v1/default_plugins.go).
DEFAULT_SCORE_WEIGHTS = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
    "VolumeBinding": 1,
}


def scheduler_config(docs: list[tuple[str, Obj]]) -> dict[str, Any]:
    cm = one(docs, "ConfigMap", SCHEDULER)
    config: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
    return config


def extender_container(docs: list[tuple[str, Obj]]) -> Obj:
    deployment = one(docs, "Deployment", SCHEDULER)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    found: Obj = next(c for c in containers if c["name"] == "extender")
    return found


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_config_passes_upstream_validation(values_set: str) -> None:
    assert kubescheduler.problems(scheduler_config(rendered(values_set))) == []


def test_default_profile() -> None:
    config = scheduler_config(rendered("defaults"))
    assert config["percentageOfNodesToScore"] == 100
    assert config["leaderElection"] == {
        "leaderElect": True,
        "resourceLock": "leases",
        "resourceName": SCHEDULER,
        "resourceNamespace": "jhub",
    }
    (profile,) = config["profiles"]
    assert profile["schedulerName"] == "user-scheduler"
    assert {"name": "NodeResourcesBalancedAllocation"} in profile["plugins"]["score"]["disabled"]
    enabled = {p["name"] for p in profile["plugins"]["score"]["enabled"]}
    assert "NodeResourcesBalancedAllocation" not in enabled
    (fit,) = [pc for pc in profile["pluginConfig"] if pc["name"] == "NodeResourcesFit"]
    assert fit["args"]["scoringStrategy"]["type"] == "MostAllocated"
    (extender,) = config["extenders"]
    assert extender == {
        "urlPrefix": "http://127.0.0.1:8888",
        "prioritizeVerb": "prioritize",
        "preemptVerb": "preempt",
        "weight": 1400,
        "enableHTTPS": False,
        "httpTimeout": "250ms",
        "nodeCacheCapable": True,
        "ignorable": True,
    }


@pytest.mark.parametrize(
    ("values_set", "verbs"),
    [
        pytest.param("defaults", {"prioritizeVerb", "preemptVerb"}, id="defaults"),
        pytest.param("bind-enabled", {"prioritizeVerb", "preemptVerb", "bindVerb"}, id="bind"),
        pytest.param(
            "everything-on", {"prioritizeVerb", "preemptVerb", "bindVerb", "filterVerb"},
            id="everything",
        ),
    ],
)  # fmt: skip
def test_verbs(values_set: str, verbs: set[str]) -> None:
    (extender,) = scheduler_config(rendered(values_set))["extenders"]
    assert {k for k in extender if k.endswith("Verb")} == verbs
    for verb in verbs:
        assert extender[verb] == verb.removesuffix("Verb")


@pytest.mark.parametrize(
    ("host", "url", "probe"),
    [
        pytest.param("127.0.0.1", "http://127.0.0.1:9000", "exec", id="loopback"),
        pytest.param("0.0.0.0", "http://127.0.0.1:9000", "httpGet", id="any-v4-dials-loopback"),
        pytest.param("::", "http://[::1]:9000", "httpGet", id="any-v6-dials-loopback"),
        pytest.param("::1", "http://[::1]:9000", "exec", id="v6-literal-bracketed"),
    ],
)
def test_listen_address_url_and_probes(host: str, url: str, probe: str) -> None:
    """On loopback the kubelet cannot reach the extender, so its probes run in the container;
    listening on all addresses, the kubelet probes the port itself."""
    docs = render_values(
        {"scheduling": {"userScheduler": {"extender": {"host": host, "port": 9000}}}}
    )
    assert scheduler_config(docs)["extenders"][0]["urlPrefix"] == url
    container = extender_container(docs)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SCHEDULER_EXTENDER_HOST"] == host
    for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        if probe == "exec":
            assert container[kind]["exec"]["command"][-2] == url + path
        else:
            assert container[kind]["httpGet"] == {"path": path, "port": "extender"}
            assert {"name": "extender", "containerPort": 9000} in container["ports"]


def test_no_service_links_in_the_scheduler_pod() -> None:
    """A Service named scheduler-extender-* would inject SCHEDULER_EXTENDER_*_SERVICE_HOST
    variables, which are not settings."""
    deployment = one(rendered("defaults"), "Deployment", SCHEDULER)
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_kube_scheduler_probes_use_livez_and_readyz() -> None:
    deployment = one(rendered("defaults"), "Deployment", SCHEDULER)
    ks = deployment["spec"]["template"]["spec"]["containers"][0]
    assert ks["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 10259, "scheme": "HTTPS"}
    assert ks["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 10259,
                                               "scheme": "HTTPS"}  # fmt: skip


def test_extender_disabled_removes_sidecar_and_block() -> None:
    docs = render_values({"scheduling": {"userScheduler": {"extender": {"enabled": False}}}})
    config = scheduler_config(docs)
    assert "extenders" not in config
    deployment = one(docs, "Deployment", SCHEDULER)
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert names == ["kube-scheduler"]


def test_config_change_restarts_the_scheduler() -> None:
    before = one(rendered("defaults"), "Deployment", SCHEDULER)
    after = one(
        render_values({"scheduling": {"userScheduler": {"extender": {"weight": 700}}}}),
        "Deployment",
        SCHEDULER,
    )
    key = "checksum/config"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


# --- the weight ----------------------------------------------------------------------------


def score_weights(profile: dict[str, Any]) -> dict[str, int]:
    """Effective score plugin weights of a profile: defaults, minus disabled, plus enabled."""
    score = (profile.get("plugins") or {}).get("score") or {}
    disabled = {p["name"] for p in score.get("disabled") or []}
    weights = {} if "*" in disabled else dict(DEFAULT_SCORE_WEIGHTS)
    for name in disabled:
        weights.pop(name, None)
    for plugin in score.get("enabled") or []:
        weights[plugin["name"]] = plugin.get("weight", 1)
    return weights


def test_extender_leads_packing_but_not_node_affinity() -> None:
    """kube-scheduler adds extender score (0..10) * weight * 10 to plugin score (0..100) *
    plugin weight (ref: kubernetes pkg/scheduler/schedule_one.go, prioritizeNodes).

    - One extender step must outweigh everything below InterPodAffinity at full range, so the
      extender, not MostAllocated's coarse integer scores, decides between nodes.
    - The extender's full range must stay below a full NodeAffinity preference, so a user's
      preferred node affinity (z2jh's matchNodePurpose: prefer) still wins.
    """
    config = scheduler_config(rendered("defaults"))
    weights = score_weights(config["profiles"][0])
    ext_weight = config["extenders"][0]["weight"]
    below = {n: w for n, w in weights.items() if n not in ("NodeAffinity", "InterPodAffinity")}
    assert below == {
        "NodeResourcesFit": 121,
        "ImageLocality": 11,
        "TaintToleration": 3,
        "PodTopologySpread": 2,
        "VolumeBinding": 1,
    }
    one_step = 1 * ext_weight * 10
    assert one_step > 100 * sum(below.values())  # 14,000 > 13,800
    assert 10 * ext_weight * 10 < 100 * weights["NodeAffinity"]  # 140,000 < 1,463,100


def test_weight_must_be_positive() -> None:
    from helm_python import HelmValuesError

    with pytest.raises(HelmValuesError, match="weight"):
        render_values({"scheduling": {"userScheduler": {"extender": {"weight": 0}}}})


# --- the validator itself can fail ---------------------------------------------------------


def _valid() -> dict[str, Any]:
    return copy.deepcopy(scheduler_config(rendered("defaults")))


def _two_binders(c: dict[str, Any]) -> None:
    c["extenders"][0]["bindVerb"] = "bind"
    c["extenders"].append(dict(c["extenders"][0], urlPrefix="http://127.0.0.1:9999"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(_two_binders, "only one can", id="two-binders"),
        pytest.param(lambda c: c["extenders"][0].update(weight=0), "positive weight",
                     id="zero-weight-with-prioritize"),
        pytest.param(lambda c: c["extenders"][0].update(filterVerb="filter",
                                                       nodeCacheCapable=False),
                     "nodeCacheCapable", id="filter-without-node-cache"),
        pytest.param(lambda c: c["extenders"][0].update(httpTimeout="1 second"),
                     "Go duration", id="bad-timeout"),
        pytest.param(lambda c: c["extenders"][0].update(enableHTTPS=True), "https://",
                     id="https-mismatch"),
        pytest.param(lambda c: c["extenders"][0].update(managedResources=[{"name": "cpu"}]),
                     "extended resource", id="managed-core-resource"),
        pytest.param(lambda c: c["leaderElection"].update(resourceLock="endpoints"),
                     "leases", id="endpoints-lock"),
        pytest.param(lambda c: c.update(percentageOfNodesToScore=101), "[0-100]",
                     id="percentage"),
        pytest.param(lambda c: c["profiles"].append(copy.deepcopy(c["profiles"][0])),
                     "Duplicate", id="duplicate-profile"),
        pytest.param(lambda c: c.update(profiles=[]), "profiles: Required", id="no-profile"),
        pytest.param(lambda c: c["extenders"][0].update(nodeCacheable=True), "Extra inputs",
                     id="unknown-field"),
        pytest.param(lambda c: c["profiles"][0]["pluginConfig"][0]["args"]["scoringStrategy"]
                     ["resources"][0].update(weight=0), "[1, 100]", id="fit-resource-weight"),
        pytest.param(lambda c: c["profiles"][0]["plugins"]["score"]["enabled"].append(
                     {"name": "EBSLimits"}), "removed", id="removed-plugin"),
        pytest.param(lambda c: c.update(podInitialBackoffSeconds=0), "greater than 0",
                     id="backoff"),
    ],
)  # fmt: skip
def test_validator_rejects(mutate: Any, message: str) -> None:
    config = _valid()
    mutate(config)
    found = kubescheduler.problems(config)
    assert any(message in p for p in found), found


# --- the sidecar's settings ----------------------------------------------------------------


def extender_env(values_set: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in extender_container(rendered(values_set))["env"]}


@pytest.mark.parametrize(
    ("values_set", "bind"),
    [("defaults", False), ("bind-enabled", True), ("everything-on", True)],
)
def test_bind_verb_and_extender_switch_go_together(values_set: str, bind: bool) -> None:
    """A bindVerb without binding enabled in the extender would fail every pod's binding."""
    (extender,) = scheduler_config(rendered(values_set))["extenders"]
    assert ("bindVerb" in extender) is bind
    assert (extender_env(values_set).get(BIND_ENV) == "true") is bind


@pytest.mark.parametrize("values_set", [v for v in VALUES_SETS if v != "plain"])
def test_extender_env_is_accepted_by_settings(
    values_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SCHEDULER_EXTENDER_* the chart sets is a real setting, with a valid value."""
    env = extender_env(values_set)
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert set(env) - fields == set()
    for name in list(Settings.model_fields):
        monkeypatch.delenv(ENV_PREFIX + name.upper(), raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings([])
    values = values_for(values_set)
    ext = (values.get("scheduling", {}).get("userScheduler", {}) or {}).get("extender", {})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8888
    assert settings.placeholder_max_priority == -10
    assert settings.match_node_purpose.value == (
        values.get("scheduling", {}).get("userPods", {}).get("nodeAffinity", {})
        .get("matchNodePurpose", "prefer")
    )  # fmt: skip
    for key, value in (ext.get("settings") or {}).items():
        assert getattr(settings, key) == value
    assert settings.live_state == "on", "in a pod the extender must not serve the demo"
    assert settings.bind_enabled is bool(ext.get("bind"))
    if settings.bind_enabled:
        (extender,) = scheduler_config(rendered(values_set))["extenders"]
        assert settings.bind_timeout_seconds < go_seconds(extender["httpTimeout"])


def go_seconds(duration: str) -> float:
    return float(duration[:-2]) / 1000 if duration.endswith("ms") else float(duration[:-1])


@pytest.mark.parametrize(
    ("timeout", "bind_timeout"), [("1s", "0.800"), ("500ms", "0.400"), ("2.5s", "2.000")]
)
def test_bind_timeout_follows_http_timeout(timeout: str, bind_timeout: str) -> None:
    docs = render_values(
        {"scheduling": {"userScheduler": {"extender": {"bind": True, "httpTimeout": timeout}}}}
    )
    env = {e["name"]: e["value"] for e in extender_container(docs)["env"]}
    assert env[ENV_PREFIX + "BIND_TIMEOUT_SECONDS"] == bind_timeout


@settings(max_examples=60, deadline=None)
@given(
    millis=st.integers(min_value=2, max_value=120_000),
    unit=st.sampled_from(["ms", "s"]),
    fraction=st.sampled_from(["", ".0", ".5", ".25"]),
)
def test_bind_timeout_is_always_below_http_timeout(millis: int, unit: str, fraction: str) -> None:
    """Whatever Go duration the schema accepts, the extender's Binding POST gives up before
    kube-scheduler's call does, and is a valid (positive) setting."""
    number = f"{millis}{fraction}" if unit == "ms" else f"{millis / 1000:g}"
    timeout = number + unit
    docs = render_values(
        {"scheduling": {"userScheduler": {"extender": {"bind": True, "httpTimeout": timeout}}}}
    )
    bind = float(
        {e["name"]: e["value"] for e in extender_container(docs)["env"]}[
            ENV_PREFIX + "BIND_TIMEOUT_SECONDS"
        ]
    )
    assert 0 < bind < go_seconds(scheduler_config(docs)["extenders"][0]["httpTimeout"])


@pytest.mark.parametrize(
    ("extender", "message"),
    [
        pytest.param({"httpTimeout": "0s"}, "5s default", id="zero"),
        pytest.param({"httpTimeout": "0ms", "bind": True}, "5s default", id="zero-ms"),
        pytest.param({"httpTimeout": "1ms", "bind": True}, "too short for bind", id="1ms-bind"),
    ],
)
def test_unusable_http_timeouts_are_refused(extender: dict[str, Any], message: str) -> None:
    from helm_python import HelmRenderError

    with pytest.raises(HelmRenderError, match=message):
        render_values({"scheduling": {"userScheduler": {"extender": extender}}})


def test_containers_run_registered_commands() -> None:
    """The image's entry point runs the first argument as a subcommand: it must exist."""
    for values_set in ("everything-on", "defaults"):
        for _, obj in rendered(values_set):
            if obj["kind"] not in ("Deployment", "Job"):
                continue
            for c in obj["spec"]["template"]["spec"]["containers"]:
                if "scheduler-extender" in c["image"]:
                    assert c["args"][0] in cli.COMMANDS, c["args"]


def kube_scheduler_image(docs: list[tuple[str, Obj]]) -> str:
    deployment = one(docs, "Deployment", SCHEDULER)
    (ks,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]
             if c["name"] == "kube-scheduler"]  # fmt: skip
    image: str = ks["image"]
    return image


@pytest.mark.parametrize(
    ("kube_version", "tag"),
    [
        pytest.param("v1.30.14", "v1.30.14", id="upstream"),
        pytest.param("v1.31.4-eks-2d5f260", "v1.31.4", id="eks"),
        pytest.param("v1.30.5-gke.1014001", "v1.30.5", id="gke"),
        pytest.param("v1.33.2+k3s1", "v1.33.2", id="k3s"),
        pytest.param("v1.32.9-rc.0", "v1.32.9", id="pre-release"),
        pytest.param("1.34.1", "v1.34.1", id="no-v"),
        pytest.param("1.35", "v1.35.0", id="no-patch"),
        pytest.param("v1.36.3", "v1.36.3", id="newest-supported"),
    ],
)
def test_kube_scheduler_matches_the_cluster(kube_version: str, tag: str) -> None:
    """An empty tag runs the API server's own release: never newer than it (version skew
    policy), and a tag that exists upstream (vendor suffixes dropped)."""
    docs = render_values({}, kube_version=kube_version)
    assert kube_scheduler_image(docs) == f"registry.k8s.io/kube-scheduler:{tag}"


def test_an_explicit_tag_wins() -> None:
    values = {"scheduling": {"userScheduler": {"image": {"name": "mirror.example/ks",
                                                         "tag": "v1.33.7"}}}}  # fmt: skip
    docs = render_values(values, kube_version="v1.35.2")
    assert kube_scheduler_image(docs) == "mirror.example/ks:v1.33.7"


def test_the_plain_manifests_run_the_oldest_supported_scheduler() -> None:
    """The committed plain manifests are rendered for PLAIN_KUBE_VERSION, which Chart.yaml's
    kubeVersion accepts and whose minor is the chart's oldest."""
    from manifests import render as chart_render

    docs = [d for d in yaml.safe_load_all(chart_render.PLAIN_MANIFEST.read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and "user-scheduler"
                     in d["metadata"]["name"]]  # fmt: skip
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert f"registry.k8s.io/kube-scheduler:{chart_render.PLAIN_KUBE_VERSION}" in images
    chart = yaml.safe_load((chart_render.CHART / "Chart.yaml").read_text())
    oldest = chart["kubeVersion"].removeprefix(">=").split("-")[0].rsplit(".", 1)[0]
    assert chart_render.PLAIN_KUBE_VERSION.startswith(f"v{oldest}.")


def test_kube_version_option_renders_like_the_public_api() -> None:
    """render(kube_version=...) goes through the SDK's native call; with Helm's own default
    version it gives exactly what the public Chart.render gives (a pinned tag keeps this
    independent of which version that default is; NOTES names it)."""
    from manifests import render as chart_render

    values = {"scheduling": {"userScheduler": {"image": {"tag": "v1.0.0"}}}}
    default = chart_render.render(values)
    notes = " ".join(default["scheduler-extender/templates/NOTES.txt"].split())
    (helm_default,) = re.findall(r"older than this cluster \((\S+)\)", notes)
    assert chart_render.render(values, kube_version=helm_default) == default


def test_kube_scheduler_command() -> None:
    deployment = one(rendered("defaults"), "Deployment", SCHEDULER)
    spec = deployment["spec"]["template"]["spec"]
    ks = spec["containers"][0]
    assert ks["image"].startswith("registry.k8s.io/kube-scheduler:v1.")
    assert "--config=/etc/user-scheduler/config.yaml" in ks["command"]
    assert deployment["spec"]["replicas"] == 2
    config_volume = next(v for v in spec["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == SCHEDULER
    assert ks["resources"]["requests"] == {"cpu": "30m", "memory": "512Mi"}


# --- the extender's in-container probe, run for real ----------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    """/healthz answers 200, /readyz 503 (an extender still syncing)."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def _probe_command(port: int, path: str) -> list[str]:
    docs = render_values({"scheduling": {"userScheduler": {"extender": {"port": port}}}})
    kind = "livenessProbe" if path == "/healthz" else "readinessProbe"
    command: list[str] = extender_container(docs)[kind]["exec"]["command"]
    assert command[0] == "python"  # the image's venv python (PATH in the Dockerfile)
    return [sys.executable, *command[1:]]


@pytest.mark.parametrize(("path", "ok"), [("/healthz", True), ("/readyz", False)])
def test_exec_probe_ignores_proxy_variables(path: str, ok: bool) -> None:
    """Pods may be given HTTP_PROXY; urllib would send even 127.0.0.1 through it (no NO_PROXY),
    and the probe would fail on a healthy extender. The chart's probe does not use proxies."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        dead_proxy = "http://127.0.0.1:9"  # discard port: nothing listens
        env = {"PATH": os.environ["PATH"], "HTTP_PROXY": dead_proxy, "http_proxy": dead_proxy}
        probe = subprocess.run(_probe_command(port, path), env=env, timeout=30, check=False,
                               capture_output=True)  # fmt: skip
        assert (probe.returncode == 0) is ok, probe.stderr
        # The check can fail: plain urlopen goes to the dead proxy.
        naive = [
            sys.executable,
            "-c",
            "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=3)",
            f"http://127.0.0.1:{port}/healthz",
        ]
        assert subprocess.run(naive, env=env, timeout=30, check=False,
                              capture_output=True).returncode != 0  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
