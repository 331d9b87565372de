"""``scheduler-extender plan choices``: golden output for two catalog node types, every number
checked against ``scheduler-extender plan`` run on the same guarantee and limit, the 2i2c-style
rules (halving, guarantee = limit, margin, node selector), ``--from-node`` against the fake API
server, and bad input.

Regenerate a golden file after an intended change with the command in its first comment line,
e.g. ``scheduler-extender plan choices --node-type n1-highmem-4 > tests/planner/golden/choices/``
``n1-highmem-4.yaml``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler_extender import cli
from scheduler_extender.core.allocatable import MI
from scheduler_extender.planner import cli as planner
from tests.chart.conftest import objects, render_values
from tests.fakeapi import NODES, PODS, FakeApiServer, node_json, pod_json

GOLDEN = Path(__file__).parent / "golden" / "choices"

#: (golden file, argv): the issue's two node types, each with the default policy, and one with
#: the z2jh guide's 2:1 ratio.
CASES = {
    "n1-highmem-4": ["--node-type", "n1-highmem-4"],
    "m5.xlarge": ["--node-type", "m5.xlarge"],
    "m5.xlarge-ratio-2": ["--node-type", "m5.xlarge", "--limit-ratio", "2"],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["plan", "choices", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def choices_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--output", "json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = planner.main([*argv, "--output", "json", "--draws", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def profile_choices(text: str) -> dict[str, Any]:
    [item] = yaml.safe_load(text)
    choices: dict[str, Any] = item["profile_options"]["resource_allocation"]["choices"]
    return choices


@pytest.mark.parametrize("case", CASES)
def test_golden_output(capsys: pytest.CaptureFixture[str], case: str) -> None:
    code, out, err = run(capsys, *CASES[case])
    assert code == 0, err
    assert out == (GOLDEN / f"{case}.yaml").read_text()


@pytest.mark.parametrize("case", CASES)
def test_every_choice_matches_the_planner(capsys: pytest.CaptureFixture[str], case: str) -> None:
    """Users per node and the overcommit risk are what ``plan`` says for that choice's
    guarantee and limit on the same node type."""
    argv = CASES[case]
    data = choices_json(capsys, *argv)
    node_type = argv[1]
    assert data["choices"], "no choices"
    for choice in data["choices"]:
        report = plan_json(
            capsys,
            "--node-type",
            node_type,
            "--mem-guarantee",
            str(choice["memory_guarantee_bytes"]),
            "--mem-limit",
            str(choice["memory_limit_bytes"]),
            "--cpu-guarantee",
            f"{choice['cpu_guarantee_millicores']}m",
            "--heavy-probability",
            str(data["policy"]["heavy_probability"]),
        )
        assert data["node"]["for_users"] == report["node"]["for_users"]
        assert choice["users_per_node"] == report["fit"]["users"], choice["key"]
        assert choice["bound_by"] == report["fit"]["binding"], choice["key"]
        assert choice["overflow_probability"] == report["risk"]["overflow_probability"]
        assert choice["heavy_users_to_overflow"] == report["risk"]["heavy_users_to_overflow"]


@pytest.mark.parametrize("case", CASES)
def test_the_yaml_is_the_json_s_profile(capsys: pytest.CaptureFixture[str], case: str) -> None:
    code, out, err = run(capsys, *CASES[case])
    assert code == 0, err
    [item] = yaml.safe_load(out)
    assert item == choices_json(capsys, *CASES[case])["profile"]


@pytest.mark.parametrize("node_type", ["n1-highmem-4", "m5.xlarge"])
def test_2i2c_rules(capsys: pytest.CaptureFixture[str], node_type: str) -> None:
    data = choices_json(capsys, "--node-type", node_type)
    space = data["node"]["for_users"]
    margin = data["node"]["after_margin"]
    # The margin: 2% of the space, at most 2 GiB and 1 CPU.
    assert space["memory_bytes"] - margin["memory_bytes"] == min(
        -(-space["memory_bytes"] * 2 // 100), 2 * 1024**3
    )
    choices = data["choices"]
    limits = [c["memory_limit_bytes"] for c in choices]
    # Smallest first, the largest the whole space after the margin (in whole MiB), each next
    # one half the previous (rounded down to a MiB).
    assert limits == sorted(limits)
    assert limits[-1] == margin["memory_bytes"] // MI * MI
    for small, large in itertools.pairwise(limits):
        assert small == (large // 2) // MI * MI or abs(2 * small - large) < 2 * MI
    for c in choices:
        assert c["memory_guarantee_bytes"] == c["memory_limit_bytes"]  # no overcommit
        assert c["overflow_probability"] == 0
        assert c["cpu_limit_millicores"] == margin["cpu_millicores"]
    # Users double from one choice to the next smaller one.
    users = [c["users_per_node"] for c in choices]
    assert users[::-1] == [2**i for i in range(len(users))]
    options = profile_choices(yaml.safe_dump([data["profile"]]))
    assert [k for k, v in options.items() if v.get("default")] == [choices[0]["key"]]
    for option in options.values():
        selector = option["kubespawner_override"]["node_selector"]
        assert selector == {"node.kubernetes.io/instance-type": node_type}


def test_limit_ratio_halves_the_guarantee(capsys: pytest.CaptureFixture[str]) -> None:
    plain = choices_json(capsys, "--node-type", "m5.xlarge")["choices"]
    ratio = choices_json(capsys, "--node-type", "m5.xlarge", "--limit-ratio", "2")["choices"]
    assert [c["memory_limit_bytes"] for c in ratio] == [c["memory_limit_bytes"] for c in plain]
    for p, r in zip(plain, ratio, strict=True):
        assert r["memory_guarantee_bytes"] == p["memory_limit_bytes"] // 2 // MI * MI
        assert r["users_per_node"] >= p["users_per_node"]
        assert r["overflow_probability"] > 0


# --- --from-node against the fake API server ------------------------------------------------


def daemonset_pod(name: str, node: str, cpu: str, memory: str) -> dict[str, Any]:
    pod = pod_json(name, namespace="kube-system", node=node, cpu=cpu, memory=memory)
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name.rsplit("-", 1)[0],
         "uid": f"ds-{name}", "controller": True},
    ]  # fmt: skip
    return pod


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    fake = FakeApiServer()
    node = node_json("user-node-a", cpu="3920m", memory="22Gi", pods=110)
    node["metadata"]["labels"]["node.kubernetes.io/instance-type"] = "n1-highmem-4"
    fake.store.create(NODES, "", node)
    bare = node_json("user-node-b")
    del bare["metadata"]["labels"]["node.kubernetes.io/instance-type"]
    fake.store.create(NODES, "", bare)
    for pod in (
        daemonset_pod("kube-proxy-a1", "user-node-a", "100m", "0"),
        daemonset_pod("fluentbit-a1", "user-node-a", "150m", "300Mi"),
        daemonset_pod("fluentbit-b1", "user-node-b", "150m", "300Mi"),  # another node
        pod_json("jupyter-someone", node="user-node-a", cpu="1", memory="4Gi"),  # not a DS
    ):
        fake.store.create(PODS, pod["metadata"]["namespace"], pod)
    done = daemonset_pod("old-ds-a1", "user-node-a", "500m", "1Gi")
    done["status"]["phase"] = "Succeeded"  # terminal: holds nothing
    fake.store.create(PODS, "kube-system", done)
    with fake:
        yield fake.write_kubeconfig(tmp_path / "kubeconfig")


def test_from_node_measures_allocatable_minus_daemonsets(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path
) -> None:
    argv = ["--from-node", "user-node-a", "--kubeconfig", str(kubeconfig)]
    data = choices_json(capsys, *argv)
    assert data["node"]["instance_type"] == "n1-highmem-4"
    assert data["node"]["for_users"] == {
        "cpu_millicores": 3920 - 100 - 150,
        "memory_bytes": 22 * 1024**3 - 300 * MI,
        "pods": 110 - 2,
    }
    # The planner, given that space as allocatable, agrees on every choice.
    space = data["node"]["for_users"]
    for choice in data["choices"]:
        report = plan_json(
            capsys,
            "--node-cpu",
            f"{space['cpu_millicores']}m",
            "--node-memory",
            str(space["memory_bytes"]),
            "--max-pods",
            str(space["pods"]),
            "--mem-guarantee",
            str(choice["memory_guarantee_bytes"]),
            "--mem-limit",
            str(choice["memory_limit_bytes"]),
            "--cpu-guarantee",
            f"{choice['cpu_guarantee_millicores']}m",
        )
        assert report["node"]["for_users"] == space
        assert choice["users_per_node"] == report["fit"]["users"]
        assert choice["overflow_probability"] == report["risk"]["overflow_probability"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    options = profile_choices(out)
    assert len(options) == 5
    for option in options.values():
        assert option["kubespawner_override"]["node_selector"] == {
            "node.kubernetes.io/instance-type": "n1-highmem-4"
        }
    assert "measured on node user-node-a" in out


def test_from_node_without_instance_type_label(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path
) -> None:
    code, out, err = run(capsys, "--from-node", "user-node-b", "--kubeconfig", str(kubeconfig))
    assert code == 0, err
    for option in profile_choices(out).values():
        assert "node_selector" not in option["kubespawner_override"]
    assert "no node.kubernetes.io/instance-type label" in out


def test_from_node_unknown_node(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    code, _, err = run(capsys, "--from-node", "nope", "--kubeconfig", str(kubeconfig))
    assert code == 2
    assert "--from-node: reading node 'nope': 404" in err


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--node-type: give either --node-type or --from-node"),
        (["--node-type", "n1-highmem-4", "--from-node", "x"], "give either"),
        (["--node-type", "n1-hghmem-4"], "did you mean n1-highmem-4"),
        (["--node-type", "m5.xlarge", "--limit-ratio", "0.5"], "--limit-ratio: must be at least 1"),
        (["--node-type", "m5.xlarge", "--limit-ratio", "two"], "--limit-ratio: expected a number"),
        (["--node-type", "m5.xlarge", "--margin", "1"], "--margin: must be below 1"),
        (["--node-type", "m5.xlarge", "--choices", "0"], "--choices: must be at least 1"),
        (["--node-type", "m5.xlarge", "--choices", "11"], "--choices: must be at most 10"),
        (["--from-node", "x", "--max-pods", "30"], "--max-pods: only applies to --node-type"),
        (["--node-type", "m5.xlarge", "--daemonset-memory", "20Gi"], "no choice to offer"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("scheduler-extender plan choices: error: ")
    assert message in err


def test_choices_stop_above_the_smallest_useful_size(capsys: pytest.CaptureFixture[str]) -> None:
    data = choices_json(capsys, "--node-type", "m5.xlarge", "--choices", "10")
    limits = [c["memory_limit_bytes"] for c in data["choices"]]
    assert len(limits) < 10
    assert min(limits) >= 256 * MI


@pytest.mark.parametrize("case", ["n1-highmem-4", "m5.xlarge"])
def test_the_docs_show_the_real_output(case: str) -> None:
    """docs/ecosystem.md quotes these outputs; they must not drift from the command's."""
    docs = (Path(__file__).parents[2] / "docs" / "ecosystem.md").read_text()
    assert (GOLDEN / f"{case}.yaml").read_text() in docs


def test_the_output_pastes_into_this_chart_s_singleuser_profilelist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The chart reads singleuser.profileList (its pullers pull profile images): the pasted
    entries pass its values schema and render."""
    code, out, err = run(capsys, "--node-type", "n1-highmem-4")
    assert code == 0, err
    docs = render_values({"singleuser": {"profileList": yaml.safe_load(out)}})
    assert objects(docs, "DaemonSet")
