"""Checks of the KubeRay manifests beside this file (`ray-cluster.yaml`, `ray-job.yaml`) without a cluster.

    python -m llm_assets.deploy.ray_manifests [FILE ...] [--image IMAGE] [--ray-version VERSION]

prints each problem on one line and exits with status 1 when there is one (no FILE: the two manifests here).
No KubeRay CRD schema comes with the project's packages (Ray and the Kubernetes client), so the KubeRay
fields are listed here and walked by `k8s_schema`, which checks the Kubernetes objects inside them against the
Kubernetes client's models; then come the rules of this deployment:

- every field must be known: pod templates (and other Kubernetes objects inside) field by field against the
  Kubernetes client's models, the KubeRay fields around them against the `ray.io/v1` fields listed below,
  so a misspelt field fails instead of being dropped by the API server; each pod template then deserializes
  into `V1PodTemplateSpec` through the client's own deserializer (required fields such as a container name);
- KubeRay's required fields are there with the right types (`rayStartParams` values are strings, num-cpus
  and num-gpus whole numbers); upscalingMode, serviceType and submissionMode are values KubeRay knows;
- every volume mount names a volume of its pod template;
- resource quantities parse; memory and CPU requests equal their limits (Guaranteed QoS);
- 0 <= minReplicas <= replicas <= maxReplicas; group names are unique;
- a group's GPU limit equals its `num-gpus`, a GPU group has a nodeSelector, affinity or toleration to
  reach GPU nodes, and the head has no GPU;
- the head exposes the GCS (6379), dashboard (8265) and client (10001) ports with the dashboard on 0.0.0.0;
- every group's Ray container sees the same engine and lake env (`LLM_ASSETS_*`, `AWS_*`, `envFrom`);
- no secret inline: secret-looking env names only through `secretKeyRef`, none in a RayJob's runtime env,
  and no AWS access key id anywhere;
- a RayJob's `llm_assets` entrypoint parses with the project's command line, and its `clusterSelector`
  names a RayCluster among the checked files when one is given;
- optionally, the image and `rayVersion` equal the expected ones.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from .k8s_schema import ListOf, MapOf, Obj, is_a, parse_quantity, schema_problems, type_name

HERE = Path(__file__).resolve().parent
RAY_CLUSTER = HERE / "ray-cluster.yaml"
RAY_JOB = HERE / "ray-job.yaml"

API_VERSION = "ray.io/v1"
HEAD_PORTS = {6379: "GCS", 8265: "dashboard", 10001: "Ray client"}
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)
AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
SHARED_ENV = re.compile(r"^(LLM_ASSETS_|AWS_)")
IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
UPSCALING_MODES = ("Default", "Aggressive", "Conservative")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
COUNT_PARAMS = ("num-cpus", "num-gpus")  # rayStartParams that Ray reads as whole numbers


# The ray.io/v1 fields that may appear; a string names a Kubernetes client model, checked field by field
AUTOSCALER_OPTIONS = Obj({
    "resources": "V1ResourceRequirements", "image": str, "imagePullPolicy": str, "env": "list[V1EnvVar]",
    "envFrom": "list[V1EnvFromSource]", "volumeMounts": "list[V1VolumeMount]",
    "securityContext": "V1SecurityContext", "idleTimeoutSeconds": int, "upscalingMode": str, "version": str,
})
_GROUP = {"rayStartParams": MapOf(str), "template": "V1PodTemplateSpec", "resources": MapOf(str),
          "labels": MapOf(str)}
HEAD_GROUP = Obj({**_GROUP, "serviceType": str, "headService": "V1Service", "enableIngress": bool},
                 required=("rayStartParams", "template"))
WORKER_GROUP = Obj({**_GROUP, "groupName": str, "replicas": int, "minReplicas": int, "maxReplicas": int,
                    "numOfHosts": int, "idleTimeoutSeconds": int, "suspend": bool,
                    "scaleStrategy": Obj({"workersToDelete": ListOf(str)})},
                   required=("groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams",
                             "template"))
CLUSTER_SPEC = Obj({
    "headGroupSpec": HEAD_GROUP, "workerGroupSpecs": ListOf(WORKER_GROUP), "rayVersion": str,
    "enableInTreeAutoscaling": bool, "autoscalerOptions": AUTOSCALER_OPTIONS,
    "headServiceAnnotations": MapOf(str), "suspend": bool, "managedBy": str,
}, required=("headGroupSpec",))
JOB_SPEC = Obj({
    "entrypoint": str, "runtimeEnvYAML": str, "rayClusterSpec": CLUSTER_SPEC, "clusterSelector": MapOf(str),
    "submissionMode": str, "submitterPodTemplate": "V1PodTemplateSpec", "shutdownAfterJobFinishes": bool,
    "ttlSecondsAfterFinished": int, "activeDeadlineSeconds": int, "backoffLimit": int, "suspend": bool,
    "jobId": str, "metadata": MapOf(str), "entrypointNumCpus": float, "entrypointNumGpus": float,
    "entrypointResources": str, "managedBy": str,
}, required=("entrypoint",))
_TOP = {"apiVersion": str, "kind": str, "metadata": "V1ObjectMeta"}
KINDS = {
    "RayCluster": Obj({**_TOP, "spec": CLUSTER_SPEC}, required=("apiVersion", "kind", "metadata", "spec")),
    "RayJob": Obj({**_TOP, "spec": JOB_SPEC}, required=("apiVersion", "kind", "metadata", "spec")),
}

def _obj(value: Any) -> dict:
    """`value` when it is an object, else {} (a wrong type is reported by the field checks)."""
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _gpu_limit(resources: dict) -> tuple[str | None, Any]:
    for key, quantity in _obj(resources.get("limits")).items():
        if key.endswith("/gpu"):
            return key, quantity
    return None, None


def _ray_container(group: dict) -> dict:
    """The Ray container: KubeRay runs `ray start` in the first container of the template."""
    containers = _obj(_obj(group.get("template")).get("spec")).get("containers")
    return _obj(containers[0]) if isinstance(containers, list) and containers else {}


def _shared_env(container: dict) -> tuple[list, list]:
    env = sorted((e for e in _items(container.get("env")) if SHARED_ENV.match(str(e.get("name", "")))),
                 key=lambda e: str(e.get("name")))
    return env, _items(container.get("envFrom"))


def _resource_problems(container: dict, where: str, out: list[str]) -> None:
    resources = _obj(container.get("resources"))
    requests, limits = _obj(resources.get("requests")), _obj(resources.get("limits"))
    for name in ("cpu", "memory"):
        if name not in limits or name not in requests:
            out.append(f"{where}.resources: set both requests.{name} and limits.{name}")
            continue
        with contextlib.suppress(ValueError, TypeError):  # bad quantities are reported by the field check
            if parse_quantity(requests[name]) != parse_quantity(limits[name]):
                out.append(f"{where}.resources: requests.{name} {requests[name]} differs from limits.{name} "
                           f"{limits[name]}; make them equal (Guaranteed QoS: a Ray node is evicted last)")


def _env_secret_problems(container: dict, where: str, out: list[str]) -> None:
    for i, env in enumerate(_items(container.get("env"))):
        name = str(env.get("name", ""))
        if SECRET_NAME.search(name) and ("value" in env or "secretKeyRef" not in _obj(env.get("valueFrom"))):
            out.append(f"{where}.env[{i}] {name}: a secret must come from a Secret (valueFrom.secretKeyRef "
                       "or envFrom.secretRef), never inline")


def _group_problems(group: dict, where: str, is_head: bool, out: list[str]) -> None:
    params = _obj(group.get("rayStartParams"))
    container = _ray_container(group)
    cwhere = f"{where}.template.spec.containers[0]"
    template_spec = _obj(_obj(group.get("template")).get("spec"))
    for kind in ("initContainers", "containers"):
        for i, other in enumerate(_items(template_spec.get(kind))):
            _env_secret_problems(other, f"{where}.template.spec.{kind}[{i}]", out)
    out.extend(f"{where}.rayStartParams.{key}: {params[key]!r} is not a whole number"
               for key in COUNT_PARAMS if isinstance(params.get(key), str) and not params[key].isdigit())
    volumes = {v["name"] for v in _items(template_spec.get("volumes")) if isinstance(v.get("name"), str)}
    for kind in ("initContainers", "containers"):
        for i, other in enumerate(_items(template_spec.get(kind))):
            for j, mount in enumerate(_items(other.get("volumeMounts"))):
                if isinstance(mount.get("name"), str) and mount["name"] not in volumes:
                    out.append(f"{where}.template.spec.{kind}[{i}].volumeMounts[{j}]: no volume named "
                               f"{mount['name']!r} in the template")
    if not container:
        return
    _resource_problems(container, cwhere, out)
    resources = _obj(container.get("resources"))
    gpu_key, gpu_quantity = _gpu_limit(resources)
    requested = _obj(resources.get("requests")).get(gpu_key) if gpu_key else None
    if requested is not None and str(requested) != str(gpu_quantity):
        out.append(f"{cwhere}.resources: requests.{gpu_key} {requested} differs from its limit "
                   f"{gpu_quantity}")
    num_gpus = params.get("num-gpus")
    if is_head:
        if gpu_key or num_gpus not in (None, "0"):
            out.append(f"{where}: the head asks for GPUs; give them to a worker group (the head runs no "
                       "tasks)")
        ports = {p.get("containerPort") for p in _items(container.get("ports"))
                 if isinstance(p.get("containerPort"), int)}
        out.extend(f"{cwhere}.ports: add containerPort {port} ({what})"
                   for port, what in HEAD_PORTS.items() if port not in ports)
        if params.get("dashboard-host") != "0.0.0.0":
            out.append(f"{where}.rayStartParams: set dashboard-host \"0.0.0.0\" (the job submitter and the "
                       "dashboard reach the head through its service)")
    elif gpu_key or num_gpus is not None:
        try:
            limit = int(parse_quantity(gpu_quantity)) if gpu_key else 0
        except (ValueError, TypeError):
            limit = None  # reported by the field check
        if limit is not None and (num_gpus is None or not str(num_gpus).isdigit() or int(num_gpus) != limit):
            out.append(f"{where}: rayStartParams num-gpus {num_gpus!r} must equal the container's "
                       f"{gpu_key or 'nvidia.com/gpu'} limit {gpu_quantity if gpu_key else 0}")
        if gpu_key and not (template_spec.get("nodeSelector") or template_spec.get("affinity")
                            or template_spec.get("tolerations")):
            out.append(f"{where}.template.spec: a GPU group needs a nodeSelector, affinity or toleration "
                       "for the GPU nodes")
    for i, port in enumerate(_items(container.get("ports"))):
        name = port.get("name")
        if name is not None and not IANA_SVC_NAME.match(str(name)):
            out.append(f"{cwhere}.ports[{i}].name {name!r}: at most 15 lowercase letters, digits and '-'")


def cluster_spec_problems(spec: dict, where: str = "spec", image: str | None = None,
                          ray_version: str | None = None) -> list[str]:
    """Problems of a RayCluster spec beyond field names and types (those are `schema_problems`)."""
    out: list[str] = []
    head = spec.get("headGroupSpec")
    workers = spec.get("workerGroupSpecs") if isinstance(spec.get("workerGroupSpecs"), list) else []
    groups = [(head, f"{where}.headGroupSpec", True)] if isinstance(head, dict) else []
    groups += [(g, f"{where}.workerGroupSpecs[{i}]", False)
               for i, g in enumerate(workers) if isinstance(g, dict)]
    names = [g.get("groupName") for g in workers if isinstance(g, dict)]
    out.extend(f"{where}.workerGroupSpecs: groupName {name!r} is used twice"
               for name in sorted({n for n in names if names.count(n) > 1}, key=str))
    for group, gwhere, is_head in groups:
        if not is_head:
            counts = [group.get(k) for k in ("minReplicas", "replicas", "maxReplicas")]
            if all(is_a(c, (int,)) for c in counts) and not 0 <= counts[0] <= counts[1] <= counts[2]:
                out.append(f"{gwhere}: need 0 <= minReplicas <= replicas <= maxReplicas, got "
                           f"{counts[0]} / {counts[1]} / {counts[2]}")
    groups = [g for g in groups if _ray_container(g[0])]  # a group without a container is reported already
    for group, gwhere, is_head in groups:
        _group_problems(group, gwhere, is_head, out)
        found = _ray_container(group).get("image")
        if image is not None and found != image:
            out.append(f"{gwhere}.template.spec.containers[0].image: {found!r}, expected {image!r}")
    if groups:
        reference, rwhere = _shared_env(_ray_container(groups[0][0])), groups[0][1]
        for group, gwhere, _ in groups[1:]:
            if _shared_env(_ray_container(group)) != reference:
                out.append(f"{gwhere}: the Ray container's LLM_ASSETS_*/AWS_* env or envFrom differs from "
                           f"{rwhere}'s; every node must see the same engine and lake")
    mode = _obj(spec.get("autoscalerOptions")).get("upscalingMode")
    if isinstance(mode, str) and mode not in UPSCALING_MODES:
        out.append(f"{where}.autoscalerOptions.upscalingMode: {mode!r}, expected one of "
                   f"{', '.join(UPSCALING_MODES)}")
    service = _obj(head).get("serviceType")
    if isinstance(service, str) and service not in SERVICE_TYPES:
        out.append(f"{where}.headGroupSpec.serviceType: {service!r}, expected one of "
                   f"{', '.join(SERVICE_TYPES)}")
    if ray_version is not None and spec.get("rayVersion") != ray_version:
        out.append(f"{where}.rayVersion: {spec.get('rayVersion')!r}, expected {ray_version!r} "
                   "(the Ray inside the image)")
    return out


def entrypoint_problems(entrypoint: str, where: str) -> list[str]:
    """A `python -m llm_assets ...` entrypoint must parse with the project's command line."""
    try:
        argv = shlex.split(entrypoint)
    except ValueError as err:
        return [f"{where}: cannot split {entrypoint!r}: {err}"]
    if len(argv) < 3 or argv[0] not in ("python", "python3") or argv[1:3] != ["-m", "llm_assets"]:
        return []  # another program: its arguments are its own business
    from llm_assets.__main__ import parser

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parser().parse_args(argv[3:])
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            lines = errors.getvalue().strip().splitlines() or ["invalid arguments"]
            return [f"{where}: not a valid llm_assets command: {lines[-1]}"]
    return []


def _job_problems(job: dict, clusters: dict[str, dict], image: str | None,
                  ray_version: str | None) -> list[str]:
    out: list[str] = []
    spec = _obj(job.get("spec"))
    selector, own = spec.get("clusterSelector"), spec.get("rayClusterSpec")
    if bool(selector) == bool(own):
        out.append("spec: set exactly one of clusterSelector (an existing RayCluster) and rayClusterSpec")
    if isinstance(own, dict):
        out.extend(cluster_spec_problems(own, "spec.rayClusterSpec", image, ray_version))
    if isinstance(selector, dict):
        name = selector.get("ray.io/cluster")
        if name is None:
            out.append("spec.clusterSelector: select the cluster by its name under the key ray.io/cluster")
        elif clusters and isinstance(name, str) and name not in clusters:
            out.append(f"spec.clusterSelector: no RayCluster named {name!r} among {sorted(clusters)}")
        if spec.get("shutdownAfterJobFinishes"):
            out.append("spec.shutdownAfterJobFinishes: true would tear down a cluster the job does not own")
    if isinstance(spec.get("entrypoint"), str):
        out.extend(entrypoint_problems(spec["entrypoint"], "spec.entrypoint"))
    mode = spec.get("submissionMode")
    if mode is not None and mode not in SUBMISSION_MODES:
        out.append(f"spec.submissionMode: {mode!r}, expected one of {', '.join(SUBMISSION_MODES)}")
    if isinstance(spec.get("runtimeEnvYAML"), str):
        try:
            runtime_env = yaml.safe_load(spec["runtimeEnvYAML"]) or {}
        except yaml.YAMLError as err:
            runtime_env = None
            out.append(f"spec.runtimeEnvYAML: not YAML: {' '.join(str(err).split())}")
        if runtime_env is not None and not isinstance(runtime_env, dict):
            out.append("spec.runtimeEnvYAML: expected a mapping (env_vars, pip, working_dir, ...)")
        elif runtime_env:
            env_vars = runtime_env.get("env_vars") or {}
            if not isinstance(env_vars, dict) or not all(isinstance(v, str) for v in env_vars.values()):
                out.append("spec.runtimeEnvYAML: env_vars must map names to strings")
            else:
                out.extend(f"spec.runtimeEnvYAML: env_vars.{name} looks like a secret; the runtime env is "
                           "plain text in the RayJob, take it from a Secret in the cluster pods' env"
                           for name in env_vars if SECRET_NAME.search(name))
    return out


def _strings(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def manifest_problems(docs: list[dict], image: str | None = None,
                      ray_version: str | None = None) -> list[str]:
    """Every problem of these RayCluster/RayJob documents, each line prefixed by `Kind name:`."""
    clusters = {_obj(d.get("metadata")).get("name"): d for d in docs
                if isinstance(d, dict) and d.get("kind") == "RayCluster"
                and isinstance(_obj(d.get("metadata")).get("name"), str)}
    out: list[str] = []
    for doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or doc["kind"] not in KINDS:
            kind = doc.get("kind") if isinstance(doc, dict) else type_name(doc)
            out.append(f"{kind!r}: not a RayCluster or RayJob document")
            continue
        kind, found = doc["kind"], []
        schema_problems(doc, KINDS[kind], "", found, f"KubeRay {API_VERSION}")
        found = [line.lstrip(".") for line in found]
        if doc.get("apiVersion") != API_VERSION:
            found.append(f"apiVersion: {doc.get('apiVersion')!r}, expected {API_VERSION!r}")
        if kind == "RayCluster" and isinstance(doc.get("spec"), dict):
            found += cluster_spec_problems(doc["spec"], "spec", image, ray_version)
        elif kind == "RayJob" and isinstance(doc.get("spec"), dict):
            found += _job_problems(doc, clusters, image, ray_version)
        if any(AWS_KEY_ID.search(s) for s in _strings(doc)):
            found.append("an AWS access key id is written in the manifest; keep credentials in a Secret")
        name = _obj(doc.get("metadata")).get("name", "?")
        out.extend(f"{kind} {name}: {line}" for line in dict.fromkeys(found))
    return out


def load(path: str | Path) -> list[dict]:
    """The YAML documents of one manifest file (anchors resolved)."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m llm_assets.deploy.ray_manifests",
                                description="check KubeRay RayCluster/RayJob manifests before applying them")
    p.add_argument("files", nargs="*", default=[str(RAY_CLUSTER), str(RAY_JOB)])
    p.add_argument("--image", help="every Ray container must run this image")
    p.add_argument("--ray-version", help="rayVersion must be this (the Ray inside the image)")
    args = p.parse_args(argv)
    docs: list[dict] = []
    for path in args.files:
        try:
            docs += load(path)
        except (OSError, yaml.YAMLError) as err:
            print(f"{path}: {' '.join(str(err).split())}", file=sys.stderr)
            return 1
    problems = manifest_problems(docs, args.image, args.ray_version)
    for line in problems:
        print(line)
    print(f"{len(docs)} manifests, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
