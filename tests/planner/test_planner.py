"""``scheduler-extender plan``: the z2jh guide's examples, output formats and bad input.

The guide is jupyterhub/zero-to-jupyterhub-k8s docs/source/administrator/optimization.md
(https://z2jh.jupyter.org/en/latest/administrator/optimization.html): the example config's
comment ("n1-highmem-4 ... 4 cores and 26 GB ... at most about 50 users per node") and the
section "Balancing 'guaranteed' vs 'maximum' memory and CPU" (100G node, 20G and 1G guarantees,
140GB, "starting with a ratio of 2 to 1").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scheduler_extender import cli
from scheduler_extender.core.allocatable import GI, MI
from scheduler_extender.planner.catalog import load_catalog, parse_catalog
from scheduler_extender.planner.cli import main
from scheduler_extender.planner.inputs import MAX_DRAWS, parse_memory
from scheduler_extender.planner.render import fmt_bytes

G = 10**9
Z2JH_EXAMPLE = ["--mem-guarantee", "512M", "--mem-limit", "4G", "--cpu-guarantee", "0.05"]


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main([*argv, "--output", "json", "--draws", "2000"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


# --- the guide's examples, reproduced exactly ------------------------------------------------


def test_guide_n1_highmem_4_literal_is_50(capsys: pytest.CaptureFixture[str]) -> None:
    """The guide's arithmetic, read as Kubernetes quantities on the raw machine (no
    reservation, no DaemonSets): 26G / 512M = 50.78, so 50 users; cpu 4 / 0.05 = 80 and pods
    110 do not bind.  "at most about 50": memory binds at exactly 50."""
    d = plan(capsys, "--node-cpu", "4", "--node-memory", "26G", *Z2JH_EXAMPLE, "--cpu-limit", "4")
    assert d["fit"]["users"] == 50
    assert d["fit"]["per_constraint"] == {"cpu": 80, "memory": 50, "pods": 110}
    assert d["fit"]["binding"] == ["memory"]
    assert d["user"]["memory_limit_to_guarantee"] == 4 * G / (512 * 10**6)  # 7.8125
    assert d["user"]["cpu_limit_to_guarantee"] == 80


def test_guide_n1_highmem_4_in_z2jh_units_is_52(capsys: pytest.CaptureFixture[str]) -> None:
    """What the guide's config really means: Compute Engine's "26 GB" is 26 GiB (memoryMb
    26624) and z2jh's 512M is 512 MiB (KubeSpawner ByteSpecification), so the raw machine holds
    26 GiB / 512 MiB = 52 guarantees - "about 50" again."""
    d = plan(capsys, "--node-cpu", "4", "--node-memory", "26Gi", *Z2JH_EXAMPLE, "--z2jh-units")
    assert d["user"]["memory_guarantee_bytes"] == 512 * MI
    assert d["user"]["memory_limit_bytes"] == 4 * GI
    assert d["fit"]["users"] == 52


def test_guide_n1_highmem_4_on_gke_is_at_most_50(capsys: pytest.CaptureFixture[str]) -> None:
    """On a real GKE n1-highmem-4 the reservation and kube-proxy's request come off first:
    allocatable = 26 GiB - 3276.8 MiB (tiers, rounded up to a byte) - 100 MiB eviction, minus
    50 MiB for kube-proxy, leaves 23197.2 MiB; / 512 MiB = 45.3, so 45 users.  cpu:
    3920m - 100m = 3820m / 50m = 76.  Hence the guide's "at most" about 50."""
    d = plan(capsys, "--node-type", "n1-highmem-4", *Z2JH_EXAMPLE, "--z2jh-units")
    reserved = -(-32768 * MI // 10)
    for_users = 26 * GI - reserved - 100 * MI - 50 * MI
    assert d["node"]["for_users"]["memory_bytes"] == for_users
    assert d["node"]["for_users"]["cpu_millicores"] == 3820
    assert d["fit"]["per_constraint"] == {"cpu": 76, "memory": for_users // (512 * MI), "pods": 108}
    assert d["fit"]["users"] == 45  # "at most about 50"
    assert d["fit"]["binding"] == ["memory"]


def test_guide_100g_node_20g_guarantee_fits_5(capsys: pytest.CaptureFixture[str]) -> None:
    """'Each node can fit 5 users (100G / 20G per user = 5 users)', a 1:1 ratio."""
    d = plan(
        capsys, "--node-cpu", "16", "--node-memory", "100G",
        "--mem-guarantee", "20G", "--mem-limit", "20G",
    )  # fmt: skip
    assert d["fit"]["users"] == 5
    assert d["fit"]["binding"] == ["memory"]
    assert d["user"]["memory_limit_to_guarantee"] == 1


def test_guide_1g_guarantee_20g_limit(capsys: pytest.CaptureFixture[str]) -> None:
    """'a guarantee of 1GB and a limit of 20GB' is a 20:1 ratio.  The guide then puts 50 users
    on the node, 'still well under the node's maximum allowed number ... we have 100G total':
    the maximum is 100 (100G / 1G; 110 pods do not bind), and 50 users is an occupancy we can
    evaluate with --users.  (The issue's "fits ~50" paraphrases that occupancy; the guide never
    says 50 is the fit.)  10 of the 50 loading 10GB ask for 140GB, so 6 heavy users already
    overflow: 50 + 6 * 9 = 104 > 100."""
    d = plan(
        capsys, "--node-cpu", "16", "--node-memory", "100G",
        "--mem-guarantee", "1G", "--mem-limit", "20G",
        "--users", "50", "--base-use", "1G", "--heavy-use", "10G",
        "--heavy-probability", "0.2",
    )  # fmt: skip
    assert d["user"]["memory_limit_to_guarantee"] == 20
    assert d["fit"]["users"] == 100
    assert d["fit"]["per_constraint"]["pods"] == 110
    assert d["risk"]["users"] == 50
    assert d["risk"]["heavy_users_to_overflow"] == 6
    # 10 of 50 heavy is p = 0.2; P(6 or more heavy) = 1 - 0.0480 (binomial tables)
    assert round(d["risk"]["overflow_probability"], 4) == 0.9520


def test_guide_two_to_one_starting_point(capsys: pytest.CaptureFixture[str]) -> None:
    """'if the limit is 10GB, start with a guarantee of 5GB.'"""
    d = plan(
        capsys, "--node-cpu", "16", "--node-memory", "100G",
        "--mem-guarantee", "1G", "--mem-limit", "10G",
    )  # fmt: skip
    two = d["recommendation"]["two_to_one"]
    assert two["memory_guarantee_bytes"] == 5 * G
    assert two["fit"]["users"] == 20


# --- the rest of the report ------------------------------------------------------------------


def test_recommendation_keeps_risk_under_target(capsys: pytest.CaptureFixture[str]) -> None:
    d = plan(
        capsys, "--node-type", "n1-highmem-4", *Z2JH_EXAMPLE, "--z2jh-units",
        "--base-use", "300Mi", "--risk-target", "0.01",
    )  # fmt: skip
    rec = d["recommendation"]
    assert rec["overflow_probability"] <= 0.01
    assert rec["bound_by"] == "memory"
    low, high = rec["memory_guarantee_min_bytes"], rec["memory_guarantee_max_bytes"]
    assert low <= rec["suggested_memory_guarantee_bytes"] <= high
    assert rec["suggested_memory_guarantee_bytes"] % MI == 0
    space = d["node"]["for_users"]["memory_bytes"]
    assert space // low == space // high == rec["users"]
    assert space // (low - 1) == rec["users"] + 1


def test_monte_carlo_in_output_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--node-cpu", "16", "--node-memory", "100G", "--mem-guarantee", "1G",
         "--mem-limit", "20G", "--users", "50", "--heavy-shape", "uniform",
         "--seed", "11", "--draws", "20000", "--output", "json"]
    )  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert code == 0
    mc = d["risk"]["monte_carlo"]
    assert (mc["draws"], mc["seed"]) == (20000, 11)
    exact = d["risk"]["overflow_probability"]
    assert abs(mc["overflow_probability"] - exact) <= 4 * mc["standard_error"] + 2e-3


def test_draws_zero_skips_monte_carlo(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--node-type", "m5.xlarge", *Z2JH_EXAMPLE, "--draws", "0", "--output", "json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["risk"]["monte_carlo"] is None


def test_table_output_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--node-type", "n1-highmem-4", *Z2JH_EXAMPLE, "--z2jh-units", "--draws", "500"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "45 users per node, bound by memory" in out
    for heading in ("Node", "Users per node", "Memory overcommit risk", "Recommendation"):
        assert heading in out
    assert "2:1 starting point" in out
    assert "z2jh units" in out


def test_max_pods_override_changes_eks_reservation(capsys: pytest.CaptureFixture[str]) -> None:
    """EKS reserves 11 MiB per pod slot: prefix delegation's 110 pods reserve more memory than
    the ENI limit's 58 on an m5.xlarge."""
    eni = plan(capsys, "--node-type", "m5.xlarge", *Z2JH_EXAMPLE)
    prefix = plan(capsys, "--node-type", "m5.xlarge", *Z2JH_EXAMPLE, "--max-pods", "110")
    assert eni["node"]["allocatable"]["pods"] == 58
    assert eni["node"]["reserved"]["memory_bytes"] == (11 * 58 + 255) * MI
    assert prefix["node"]["reserved"]["memory_bytes"] == (11 * 110 + 255) * MI


def test_daemonset_flags_override(capsys: pytest.CaptureFixture[str]) -> None:
    d = plan(
        capsys, "--node-cpu", "4", "--node-memory", "26G", *Z2JH_EXAMPLE,
        "--daemonset-memory", "1G", "--daemonset-pods", "8", "--daemonset-cpu", "200m",
    )  # fmt: skip
    assert d["node"]["for_users"] == {
        "cpu_millicores": 3800,
        "memory_bytes": 25 * G,
        "pods": 102,
    }
    assert d["fit"]["users"] == 48  # 25G / 512M = 48.8


def test_raw_node_with_provider_applies_its_reservation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = plan(
        capsys, "--node-cpu", "4", "--node-memory", "26Gi", *Z2JH_EXAMPLE, "--provider", "gke"
    )
    typed = plan(capsys, "--node-type", "n1-highmem-4", *Z2JH_EXAMPLE)
    assert raw["node"]["for_users"] == typed["node"]["for_users"]


def test_registered_under_the_main_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["plan", "--node-type", "n1-highmem-8", *Z2JH_EXAMPLE, "--draws", "0"])
    assert code == 0
    assert "users per node" in capsys.readouterr().out


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--z2jh-units" in capsys.readouterr().out


# --- node-type catalog -----------------------------------------------------------------------


def test_catalog_lists_every_type_with_sane_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-node-types", "--output", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"n1-highmem-4", "m5.xlarge", "Standard_D4s_v3"} <= names
    assert {r["provider"] for r in rows} == {"gke", "eks", "aks"}
    for r in rows:
        assert 0 < r["allocatable_memory_bytes"] < r["memory_bytes"], r["name"]
        assert 0 < r["allocatable_cpu_millicores"] < r["cpu_millicores"], r["name"]


def test_catalog_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-node-types"]) == 0
    assert "Standard_E8s_v5" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "max_pods"),
    [
        ("m5.large", 29),
        ("m5.xlarge", 58),
        ("m5.2xlarge", 58),
        ("m5.4xlarge", 234),
        ("m6i.xlarge", 58),
        ("r5.large", 29),
        ("r5.xlarge", 58),
        ("r5.2xlarge", 58),
        ("r5.4xlarge", 234),
        ("r6i.xlarge", 58),
        ("t3.large", 35),
    ],
    ids=str,
)
def test_catalog_eks_max_pods_match_eni_max_pods_txt(name: str, max_pods: int) -> None:
    # ref: awslabs/amazon-eks-ami files/eni-max-pods.txt
    catalog = load_catalog()
    nt = catalog.node_types[name]
    assert nt.default_max_pods(catalog.providers[nt.provider]) == max_pods


def test_catalog_rejects_malformed_entries() -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_catalog("providers: {}\nnode_types:\n  x: {provider: gke, cpu: 4}\n")
    with pytest.raises(ValueError, match="malformed"):
        parse_catalog("providers: {}\nnode_types:\n  x: {provider: gke, cpu: 4, memory: 1Gi}\n")


# --- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "z2jh", "expected"),
    [
        ("512M", False, 512 * 10**6),
        ("512Mi", False, 512 * MI),
        ("4G", False, 4 * G),
        ("26Gi", False, 26 * GI),
        ("0.5", False, 1),  # fractional bytes round up, like the API server
        ("512M", True, 512 * MI),
        ("4G", True, 4 * GI),
        ("1.5G", True, 3 * GI // 2),
        ("1073741824", True, GI),
    ],
    ids=str,
)
def test_memory_units(text: str, z2jh: bool, expected: int) -> None:
    assert parse_memory("--mem-guarantee", text, z2jh=z2jh) == expected


@pytest.mark.parametrize(
    ("n", "text"),
    [(26 * GI, "26Gi"), (512 * 10**6, "512M"), (100 * G, "100G"), (3 * MI // 2, "1.5Mi")],
    ids=str,
)
def test_fmt_bytes(n: int, text: str) -> None:
    assert fmt_bytes(n) == text


# --- bad input: exit 2, one line naming the flag, never a traceback --------------------------

M5L = ["--node-type", "m5.large"]
Z2 = "--z2jh-units"
M5 = [*M5L, *Z2JH_EXAMPLE]
BAD = [
    (["--node-type", "n1-highmem-5", *Z2JH_EXAMPLE], "--node-type", "did you mean n1-highmem-"),
    (["--node-cpu", "4", *Z2JH_EXAMPLE], "--node-type", "both --node-cpu and --node-memory"),
    (["--node-cpu", "4", "--node-memory", "-26G", *Z2JH_EXAMPLE], "--node-memory", ""),
    (["--node-cpu=-4", "--node-memory", "26G", *Z2JH_EXAMPLE], "--node-cpu", "negative"),
    (["--node-cpu", "0", "--node-memory", "26G", *Z2JH_EXAMPLE], "--node-cpu", "positive"),
    ([*M5L, "--mem-guarantee=-1G", "--mem-limit", "4G"], "--mem-guarantee", "negative"),
    ([*M5L, "--mem-guarantee", "8G", "--mem-limit", "4G"], "--mem-limit", "at least"),
    ([*M5L, "--mem-guarantee", "lots", "--mem-limit", "4G"], "--mem-guarantee", "quantity"),
    ([*M5L, "--mem-guarantee", "512Mi", "--mem-limit", "4G", Z2], "--mem-guarantee", "z2jh"),
    ([*M5L, "--mem-limit", "4G"], "--mem-guarantee", "required"),
    ([*M5L, "--mem-guarantee", "1G"], "--mem-limit", "required"),
    ([*M5, "--cpu-limit", "10m"], "--cpu-limit", "at least --cpu-guarantee"),
    ([*M5, "--heavy-use", "5G"], "--heavy-use", "--mem-limit"),
    ([*M5, "--base-use", "3G", "--heavy-use", "2G"], "--base-use", "heavy"),
    ([*M5, "--heavy-probability", "1.5"], "--heavy-probability", "between 0 and 1"),
    ([*M5, "--heavy-probability", "often"], "--heavy-probability", "probability"),
    ([*M5, "--risk-target", "1"], "--risk-target", "strictly"),
    ([*M5, "--users", "500"], "--users", "more than"),
    ([*M5, "--draws", str(MAX_DRAWS + 1)], "--draws", "at most"),
    ([*M5, "--max-pods", "0"], "--max-pods", "positive"),
    ([*M5, "--max-pods", "many"], "--max-pods", "whole number"),
    ([*M5, "--max-pods", "5000"], "--max-pods", "at most 1000"),
    ([*M5, "--provider", "gke"], "--provider", "only applies"),
    ([*M5, "--output", "xml"], "--output", "invalid choice"),
    ([*M5, "--daemonset-memory", "x"], "--daemonset-memory", "quantity"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "flag", "words"), BAD, ids=[f"{i}-{flag}" for i, (_, flag, _) in enumerate(BAD)]
)
def test_bad_input_names_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str, words: str
) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert flag in err and words in err
    assert "Traceback" not in err
    assert err.startswith("scheduler-extender plan: error:")
