"""Generated files are fresh, and README's install commands are the ones that work.

README's "Install on a cluster" commands are parsed and replayed: the helm command renders with
its exact flags through Helm's engine, and the kubectl commands refer to the committed plain
manifests and to objects in them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from manifests import render as chart_render
from tests.chart.conftest import TEST_KUBE_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_committed_files_are_fresh() -> None:
    """Fails when the chart or schema source changed without `make manifests`."""
    assert chart_render.main(["--check"]) == 0


def test_check_notices_a_stale_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "scheduler-extender.yaml"
    stale.write_text(chart_render.PLAIN_MANIFEST.read_text().replace("replicas: 2", "replicas: 1"))
    monkeypatch.setattr(chart_render, "PLAIN_MANIFEST", stale)
    monkeypatch.setattr(chart_render, "HERE", tmp_path / "manifests")
    assert chart_render.main(["--check"]) == 1
    assert "stale: scheduler-extender.yaml (run `make manifests`)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "field",
    [
        {"$ref": "#/$defs/Mode", "default": "a", "description": "d"},
        {"allOf": [{"$ref": "#/$defs/Mode"}], "default": "a", "description": "d"},
    ],
    ids=["pydantic-2.9+", "pydantic-2.7-allOf"],
)
def test_enum_fields_inline_the_same_under_every_supported_pydantic(field: dict[str, Any]) -> None:
    definitions = {"Mode": {"enum": ["a", "b"], "type": "string", "title": "Mode"}}
    assert chart_render._inline_refs({"properties": {"mode": field}}, definitions) == {
        "properties": {
            "mode": {
                "enum": ["a", "b"], "type": "string", "title": "Mode", "default": "a",
                "description": "d",
            }
        }
    }  # fmt: skip


def test_plain_manifest_has_no_helm_hooks_and_one_namespace() -> None:
    docs = [d for d in yaml.safe_load_all(chart_render.PLAIN_MANIFEST.read_text()) if d]
    assert docs
    for doc in docs:
        assert "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})
        assert doc["metadata"].get("namespace", chart_render.PLAIN_NAMESPACE) == (
            chart_render.PLAIN_NAMESPACE
        )
    kinds = [d["kind"] for d in docs]
    assert kinds.index("PriorityClass") < kinds.index("Deployment")
    assert kinds.index("ServiceAccount") < kinds.index("Deployment")


def test_plain_manifest_writes_multi_line_strings_as_blocks() -> None:
    """The KubeSchedulerConfiguration reads as YAML in the file, not as one escaped string."""
    text = chart_render.PLAIN_MANIFEST.read_text()
    assert (
        "  config.yaml: |\n"
        "    apiVersion: kubescheduler.config.k8s.io/v1\n"
        "    kind: KubeSchedulerConfiguration\n"
    ) in text
    assert "\\n" not in text
    # ...and loads back to the same objects the chart renders.
    docs = [d for d in yaml.safe_load_all(text) if d]
    rendered = chart_render.documents(
        chart_render.render(
            chart_render.load_values([chart_render.PLAIN_VALUES]),
            kube_version=chart_render.PLAIN_KUBE_VERSION,
        )
    )

    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    assert sorted(docs, key=key) == sorted((o for _, o in rendered), key=key)


# --- README --------------------------------------------------------------------------------


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install on a cluster", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(shlex.split(line))
    return commands


def parse_helm(argv: list[str]) -> dict[str, Any]:
    """The `helm upgrade --install` flags README uses; any other flag fails the test."""
    assert argv[:3] == ["helm", "upgrade", "--install"], argv
    release, chart = argv[3], argv[4]
    out: dict[str, Any] = {"release": release, "chart": chart, "files": [], "sets": {},
                           "namespace": "default", "timeout": None}  # fmt: skip
    rest = argv[5:]
    while rest:
        flag = rest.pop(0)
        if flag in ("--namespace", "-n"):
            out["namespace"] = rest.pop(0)
        elif flag == "--create-namespace":
            pass
        elif flag in ("--values", "-f"):
            out["files"].append(ROOT / rest.pop(0))
        elif flag == "--set":
            out["sets"] = chart_render.merge_values(
                out["sets"], helm_python.parse_set_string(rest.pop(0))
            )
        elif flag == "--timeout":
            out["timeout"] = rest.pop(0)
        else:
            raise AssertionError(f"README uses a helm flag this test does not replay: {flag}")
    return out


def go_duration_seconds(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)([hms])", text))


def test_readme_helm_command_renders() -> None:
    (helm_cmd,) = [c for c in readme_commands() if c[0] == "helm"]
    args = parse_helm(helm_cmd)
    assert (ROOT / args["chart"]).resolve() == chart_render.CHART
    values = chart_render.load_values(args["files"], args["sets"])
    docs = chart_render.documents(
        chart_render.render(
            values,
            release=args["release"],
            namespace=args["namespace"],
            kube_version=TEST_KUBE_VERSION,
        )
    )
    image = args["sets"]["image"]["name"]
    ours = [
        c["image"]
        for _, o in docs
        if o["kind"] in ("Deployment", "Job")
        for c in o["spec"]["template"]["spec"]["containers"]
        if c["name"] in ("extender", "awaiter")
    ]
    assert ours and all(i == f"{image}:0.1.0" for i in ours)
    # Helm must wait longer than the pullers' awaiter, or Helm gives up first.
    hook_timeout = yaml.safe_load((chart_render.CHART / "values.yaml").read_text())["prePuller"][
        "hook"
    ]["timeoutSeconds"]
    assert go_duration_seconds(args["timeout"]) > hook_timeout + 120


def test_readme_docker_tag_matches_the_chart() -> None:
    commands = readme_commands()
    (build,) = [c for c in commands if c[:2] == ["docker", "build"]]
    tag = build[build.index("-t") + 1]
    (helm_cmd,) = [c for c in commands if c[0] == "helm"]
    args = parse_helm(helm_cmd)
    app_version = yaml.safe_load((chart_render.CHART / "Chart.yaml").read_text())["appVersion"]
    assert tag == f"{args['sets']['image']['name']}:{app_version}"


def test_readme_kubectl_commands_match_the_plain_manifests() -> None:
    commands = [c for c in readme_commands() if c[0] == "kubectl"]
    create, apply, set_image = commands
    assert create == ["kubectl", "create", "namespace", chart_render.PLAIN_NAMESPACE]
    assert apply[:3] == ["kubectl", "apply", "-f"]
    assert (ROOT / apply[3]).resolve() == chart_render.PLAIN_MANIFEST
    docs = [d for d in yaml.safe_load_all(chart_render.PLAIN_MANIFEST.read_text()) if d]
    assert set_image[:4] == ["kubectl", "--namespace", chart_render.PLAIN_NAMESPACE, "set"]
    kind, name = set_image[5].split("/")
    images = dict(pair.split("=") for pair in set_image[6:])
    (deployment,) = [d for d in docs if d["kind"].lower() == kind and d["metadata"]["name"] == name]
    current = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    # Both containers are set: our image, and kube-scheduler at the cluster's version (the
    # manifests carry the oldest supported one).
    assert set(images) == set(current) == {"extender", "kube-scheduler"}
    assert images["extender"].endswith(":0.1.0")
    repo, tag = images["kube-scheduler"].rsplit(":", 1)
    assert current["kube-scheduler"] == f"{repo}:{chart_render.PLAIN_KUBE_VERSION}"
    assert re.fullmatch(r"v1\.[0-9]+\.[0-9]+", tag)


# --- docs/install.md ---------------------------------------------------------------------


def test_docs_network_policy_example_fits_the_chart() -> None:
    """The NetworkPolicy in docs/install.md is valid and selects the user-scheduler pods of
    the plain manifests, on the ports they really listen on."""
    import kubernetes_validate

    text = (ROOT / "docs" / "install.md").read_text()
    section = text.split("### The extender's port, probes and /metrics", 1)[1]
    (policy,) = [d for d in yaml.safe_load_all(re.findall(r"```yaml\n(.*?)```", section, re.S)[0])]
    kubernetes_validate.validate(policy, "1.30.0", strict=True)
    docs = [d for d in yaml.safe_load_all(chart_render.PLAIN_MANIFEST.read_text()) if d]
    (scheduler,) = [d for d in docs if d["kind"] == "Deployment"
                    and d["metadata"]["name"] == "scheduler-extender-user-scheduler"]  # fmt: skip
    assert policy["metadata"]["namespace"] == chart_render.PLAIN_NAMESPACE
    labels = scheduler["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    containers = {c["name"]: c for c in scheduler["spec"]["template"]["spec"]["containers"]}
    (rule,) = policy["spec"]["ingress"]
    assert {p["port"] for p in rule["ports"]} == {
        containers["extender"]["ports"][0]["containerPort"],
        containers["kube-scheduler"]["readinessProbe"]["httpGet"]["port"],
    }
