"""The Kubernetes deployment profile loads and validates: k8s step executor, Pipes pods with GPU requests;
the KubeRay manifests pass their checks, and the checks reject broken copies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dagster_k8s")

REPO = Path(__file__).resolve().parents[1]


def test_kubernetes_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "LLM_ASSETS_GPUS": "2", "LLM_ASSETS_NUM_NODES": "2",
           "LLM_ASSETS_STRATEGY": "fsdp", "LLM_ASSETS_DATA_DIR": "/lake"}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run([str(dagster), "definitions", "validate", "-m", "llm_assets.deploy.kubernetes"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def test_kubernetes_profile_settings(monkeypatch):
    monkeypatch.setenv("LLM_ASSETS_GPUS", "4")
    monkeypatch.setenv("LLM_ASSETS_NUM_NODES", "2")
    monkeypatch.setenv("LLM_ASSETS_STRATEGY", "fsdp")
    import importlib

    import llm_assets.deploy.kubernetes as k8s

    k8s = importlib.reload(k8s)
    resources = k8s.defs.resources
    launcher, trainer = resources["launcher"], resources["trainer"]
    assert launcher.backend == "kubernetes" and launcher.gpus == 4 and launcher.image
    assert trainer.runtime() == {"accelerator": "gpu", "devices": 4, "num_nodes": 2, "strategy": "fsdp"}
    job = k8s.defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "k8s"
    asset_keys = {k.to_user_string() for k in k8s.defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_crawl", "base_checkpoint", "model_card"} <= asset_keys


# --- the KubeRay manifests (llm_assets/deploy/ray-cluster.yaml, ray-job.yaml) ---

def _manifests() -> tuple[dict, dict]:
    """Fresh copies of the RayCluster and the RayJob (a JSON round trip unshares the YAML anchors)."""
    from llm_assets.deploy import ray_manifests as rm

    (cluster,), (job,) = rm.load(rm.RAY_CLUSTER), rm.load(rm.RAY_JOB)
    return json.loads(json.dumps(cluster)), json.loads(json.dumps(job))


def _groups(cluster: dict) -> dict[str, dict]:
    spec = cluster["spec"]
    return {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}


def _ray_container(group: dict) -> dict:
    return group["template"]["spec"]["containers"][0]


def test_ray_manifests_pass_the_checks(monkeypatch):
    import importlib

    import llm_assets.deploy.kubernetes as k8s
    from llm_assets.deploy import ray_manifests as rm

    monkeypatch.delenv("LLM_ASSETS_IMAGE", raising=False)
    image = importlib.reload(k8s).IMAGE  # the default image of the Dagster deployment
    cluster, job = _manifests()
    assert rm.manifest_problems([cluster, job], image=image, ray_version=cluster["spec"]["rayVersion"]) == []
    assert rm.main([str(rm.RAY_CLUSTER), str(rm.RAY_JOB), "--image", image]) == 0


def test_ray_version_is_the_installed_ray():
    ray = pytest.importorskip("ray")
    cluster, _ = _manifests()
    # a ray:// client must run the cluster's Ray version; the image installs the same Ray as this project
    assert cluster["spec"]["rayVersion"] == ray.__version__


def test_ray_cluster_groups_and_pod_templates():
    from kubernetes.client import ApiClient, V1PodTemplateSpec
    from kubernetes.utils import parse_quantity

    from llm_assets.deploy.k8s_schema import Body

    cluster, _ = _manifests()
    groups = _groups(cluster)
    assert set(groups) == {"head", "curation", "gpu"}
    for name, group in groups.items():
        template = ApiClient().deserialize(Body(group["template"]), "V1PodTemplateSpec")
        assert isinstance(template, V1PodTemplateSpec), name
        container = template.spec.containers[0]
        limits, requests = container.resources.limits, container.resources.requests
        assert parse_quantity(requests["memory"]) == parse_quantity(limits["memory"]) > 0, name
        env = {e.name: e for e in container.env}
        assert env["LLM_ASSETS_ENGINE"].value == "ray", name
        assert env["LLM_ASSETS_DATA_DIR"].value.startswith("s3://"), name
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key].value is None and env[key].value_from.secret_key_ref.key == key, name
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), name
        gpus = int(parse_quantity(limits.get("nvidia.com/gpu", "0")))
        assert gpus == int(group["rayStartParams"].get("num-gpus", "0")), name
        if name == "head":
            assert gpus == 0 and group["rayStartParams"]["num-cpus"] == "0"
            assert {p.container_port for p in container.ports} >= {6379, 8265, 10001}
        else:
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
            assert group["maxReplicas"] > group["minReplicas"], name  # the autoscaler has room to grow
    assert int(parse_quantity(_ray_container(groups["gpu"])["resources"]["limits"]["nvidia.com/gpu"])) >= 1
    gpu_pod = groups["gpu"]["template"]["spec"]
    assert gpu_pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in gpu_pod["tolerations"])
    assert "nvidia.com/gpu" not in _ray_container(groups["curation"])["resources"]["limits"]


def test_ray_autoscaler_reads_the_cluster():
    """Ray's own reading of a RayCluster (the KubeRay autoscaler's), checked against Ray's config schema."""
    pytest.importorskip("ray")
    autoscaling = pytest.importorskip("ray.autoscaler._private.kuberay.autoscaling_config")
    cluster, _ = _manifests()
    cluster["metadata"]["namespace"] = "dagster"  # `kubectl apply -n` sets it
    config = autoscaling._derive_autoscaling_config_from_ray_cr(cluster)
    types = config["available_node_types"]
    assert set(types) == {"headgroup", "curation", "gpu"}
    assert types["headgroup"]["resources"]["CPU"] == 0 and "GPU" not in types["headgroup"]["resources"]
    assert types["curation"]["resources"]["CPU"] == 8 and "GPU" not in types["curation"]["resources"]
    assert types["gpu"]["resources"]["GPU"] == 1
    groups = _groups(cluster)
    for name in ("curation", "gpu"):
        assert (types[name]["min_workers"], types[name]["max_workers"]) == (
            groups[name]["minReplicas"], groups[name]["maxReplicas"])


def test_ray_job_runs_curation_on_the_cluster():
    import shlex

    from llm_assets.__main__ import parser

    cluster, job = _manifests()
    spec = job["spec"]
    assert spec["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:3] == ["python", "-m", "llm_assets"]
    args = parser().parse_args(argv[3:])
    assert args.command == "curate" and args.engine == "ray"
    assert all(uri.startswith("s3://") for uri in [*args.warc, args.out])
    # the driver runs on the head: it joins the cluster it runs in and sees the same lake as the workers
    env = {e["name"]: e.get("value") for e in _ray_container(_groups(cluster)["head"])["env"]}
    assert env["LLM_ASSETS_RAY_ADDRESS"] == "auto" and env["LLM_ASSETS_DATA_DIR"].startswith("s3://")


def _set(obj: dict, key: str, value) -> None:
    obj[key] = value


def _group(cluster: dict, name: str) -> dict:
    return _groups(cluster)[name]


def _box(cluster: dict, name: str) -> dict:
    """The Ray container of group `name`."""
    return _ray_container(_groups(cluster)[name])


def _other_lake(cluster: dict) -> None:
    box = _box(cluster, "curation")
    box["env"] = [{**e, "value": "s3://other/lake"} if e["name"] == "LLM_ASSETS_DATA_DIR" else e
                  for e in box["env"]]


def _case(id_: str, break_, expected: str):
    return pytest.param(break_, expected, id=id_)


# (how a copy is broken, a piece of the problem line the checks must print)
BROKEN = [
    _case("misspelt-pod-field",
          lambda c, j: _box(c, "head").update(resource=_box(c, "head").pop("resources")),
          "resource: not a field of V1Container"),
    _case("misspelt-nested-pod-field", lambda c, j: _box(c, "gpu")["volumeMounts"][0].update(mountpath="/x"),
          "mountpath: not a field of V1VolumeMount"),
    _case("misspelt-kuberay-field",
          lambda c, j: _group(c, "curation").update(maxReplica=_group(c, "curation").pop("maxReplicas")),
          "maxReplica: not a KubeRay ray.io/v1 field"),
    _case("missing-template", lambda c, j: _group(c, "curation").pop("template"),
          "template: required field missing"),
    _case("max-below-min", lambda c, j: _group(c, "curation").update(minReplicas=4, maxReplicas=2),
          "minReplicas <= replicas <= maxReplicas"),
    _case("replicas-not-an-integer", lambda c, j: _group(c, "curation").update(replicas="1"),
          "expected an integer"),
    _case("num-gpus-not-the-limit", lambda c, j: _group(c, "gpu")["rayStartParams"].update({"num-gpus": "2"}),
          "num-gpus '2' must equal"),
    _case("num-gpus-not-a-string", lambda c, j: _group(c, "gpu")["rayStartParams"].update({"num-gpus": 1}),
          "num-gpus: expected a string"),
    _case("num-cpus-not-a-number",
          lambda c, j: _group(c, "head")["rayStartParams"].update({"num-cpus": "none"}),
          "num-cpus: 'none' is not a whole number"),
    _case("mount-without-volume", lambda c, j: _group(c, "curation")["template"]["spec"].update(volumes=[]),
          "no volume named 'shm'"),
    _case("unknown-upscaling-mode", lambda c, j: c["spec"]["autoscalerOptions"].update(upscalingMode="Fast"),
          "upscalingMode: 'Fast', expected one of"),
    _case("gpu-group-on-any-node",
          lambda c, j: _group(c, "gpu")["template"]["spec"].update(nodeSelector=None, tolerations=None),
          "needs a nodeSelector, affinity or toleration"),
    _case("gpu-on-head", lambda c, j: _box(c, "head")["resources"]["limits"].update({"nvidia.com/gpu": 1}),
          "the head asks for GPUs"),
    _case("head-without-client-port", lambda c, j: _box(c, "head")["ports"].pop(), "add containerPort 10001"),
    _case("dashboard-on-localhost", lambda c, j: _group(c, "head")["rayStartParams"].pop("dashboard-host"),
          "dashboard-host"),
    _case("memory-request-below-limit",
          lambda c, j: _box(c, "curation")["resources"]["requests"].update(memory="16Gi"),
          "requests.memory 16Gi differs from limits.memory 32Gi"),
    _case("bad-quantity", lambda c, j: _box(c, "curation")["resources"]["limits"].update(cpu="8 cores"),
          "'8 cores' is not a Kubernetes quantity"),
    _case("container-without-name", lambda c, j: _box(c, "gpu").pop("name"),
          "does not deserialize into V1PodTemplateSpec"),
    _case("inline-secret",
          lambda c, j: _box(c, "head")["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}),
          "never inline"),
    _case("access-key-id-in-a-value",
          lambda c, j: _box(c, "head")["env"].append({"name": "NOTE", "value": "AKIA" + "A" * 16}),
          "AWS access key id"),
    _case("worker-sees-other-lake", lambda c, j: _other_lake(c), "differs from spec.headGroupSpec's"),
    _case("other-image", lambda c, j: _box(c, "gpu").update(image="rayproject/ray:latest"),
          "expected 'ghcr.io/llm-assets/llm-assets:latest'"),
    _case("other-ray-version", lambda c, j: _set(c["spec"], "rayVersion", "2.9.0"), "rayVersion: '2.9.0'"),
    _case("old-api-version", lambda c, j: _set(c, "apiVersion", "ray.io/v1alpha1"), "expected 'ray.io/v1'"),
    _case("duplicate-group-name", lambda c, j: _group(c, "gpu").update(groupName="curation"),
          "'curation' is used twice"),
    _case("entrypoint-unknown-command",
          lambda c, j: _set(j["spec"], "entrypoint", j["spec"]["entrypoint"].replace("curate", "curat")),
          "not a valid llm_assets command: "),
    _case("entrypoint-unknown-engine",
          lambda c, j: _set(j["spec"], "entrypoint", j["spec"]["entrypoint"].replace("ray", "spark")),
          "invalid choice: 'spark'"),
    _case("selector-names-no-cluster",
          lambda c, j: _set(j["spec"], "clusterSelector", {"ray.io/cluster": "llm-asets"}),
          "no RayCluster named 'llm-asets'"),
    _case("selector-and-own-cluster", lambda c, j: _set(j["spec"], "rayClusterSpec", c["spec"]),
          "exactly one of clusterSelector"),
    _case("secret-in-runtime-env",
          lambda c, j: _set(j["spec"], "runtimeEnvYAML", "env_vars:\n  AWS_SECRET_ACCESS_KEY: x\n"),
          "env_vars.AWS_SECRET_ACCESS_KEY looks like a secret"),
    _case("misspelt-rayjob-field", lambda c, j: _set(j["spec"], "entrypointNumCPUs", 1),
          "entrypointNumCPUs: not a KubeRay"),
]


@pytest.mark.parametrize(("break_", "expected"), BROKEN)
def test_ray_manifest_checks_reject_a_broken_copy(break_, expected):
    from llm_assets.deploy import ray_manifests as rm

    cluster, job = _manifests()
    image, ray_version = _box(cluster, "head")["image"], cluster["spec"]["rayVersion"]
    assert rm.manifest_problems([cluster, job], image=image, ray_version=ray_version) == []
    break_(cluster, job)
    problems = rm.manifest_problems([cluster, job], image=image, ray_version=ray_version)
    assert any(expected in line for line in problems), problems


def test_ray_manifest_command_line_fails_on_a_broken_file(tmp_path, capsys):
    import yaml

    from llm_assets.deploy import ray_manifests as rm

    cluster, _ = _manifests()
    _groups(cluster)["curation"].update(minReplicas=4, maxReplicas=2)
    broken = tmp_path / "ray-cluster.yaml"
    broken.write_text(yaml.safe_dump(cluster))
    assert rm.main([str(broken)]) == 1
    out = capsys.readouterr().out
    assert "RayCluster llm-assets: spec.workerGroupSpecs[0]: need 0 <= minReplicas" in out
