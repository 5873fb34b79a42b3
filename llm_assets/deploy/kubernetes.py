"""The Kubernetes deployment profile: the same assets, each step a Kubernetes Job, training in a GPU pod.

Load it as the code location (`-m llm_assets.deploy.kubernetes`) of a Dagster Helm deployment whose
instance uses the K8sRunLauncher (see `k8s-values.yaml` beside this file). Settings come from the
environment of the code-location pod:

- LLM_ASSETS_IMAGE       the image holding this project (used by step Jobs and training pods)
- LLM_ASSETS_NAMESPACE   namespace for step Jobs and training pods (default: dagster)
- LLM_ASSETS_DATA_DIR    the lake root: a ReadWriteMany volume every pod mounts, or a bucket URL
                         (s3://bucket/prefix, with AWS_ENDPOINT_URL/AWS_DEFAULT_REGION here and the
                         credentials from the pods' service account); training pods read their shards from
                         the launching step's local mirror, so training needs the volume form
- LLM_ASSETS_CRAWL       WARC sources, e.g. an s3:// glob or a Common Crawl warc.paths.gz listing
- LLM_ASSETS_GPUS        GPUs per training pod (default 1); LLM_ASSETS_NUM_NODES, LLM_ASSETS_STRATEGY
"""

import os

from dagster_k8s import k8s_job_executor

from llm_assets.defs import build_definitions
from llm_assets.defs.training import TrainerResource, TrainingLauncher

IMAGE = os.environ.get("LLM_ASSETS_IMAGE", "ghcr.io/llm-assets/llm-assets:latest")
NAMESPACE = os.environ.get("LLM_ASSETS_NAMESPACE", "dagster")
GPUS = int(os.environ.get("LLM_ASSETS_GPUS", "1"))
# the engine settings reach every step Job, so the global stages run on the Ray cluster when they name one
SHARED_ENV = ("LLM_ASSETS_PROFILE", "LLM_ASSETS_DATA_DIR", "LLM_ASSETS_CRAWL", "LLM_ASSETS_SEED", "LLM_ASSETS_ENGINE",
              "LLM_ASSETS_RAY_ADDRESS", "LLM_ASSETS_RAY_WORKERS", "LLM_ASSETS_CACHE_DIR", "AWS_ENDPOINT_URL",
              "AWS_DEFAULT_REGION")

step_executor = k8s_job_executor.configured({
    "job_image": IMAGE,
    "job_namespace": NAMESPACE,
    "env_vars": list(SHARED_ENV),
    "max_concurrent": 32,  # crawl partitions fan out; the `gpu` pool still admits one training step
    "step_k8s_config": {"container_config": {"resources": {"requests": {"cpu": "2", "memory": "8Gi"}}}},
})

defs = build_definitions(
    resources={
        "trainer": TrainerResource(accelerator="gpu", devices=GPUS,
                                   num_nodes=int(os.environ.get("LLM_ASSETS_NUM_NODES", "1")),
                                   strategy=os.environ.get("LLM_ASSETS_STRATEGY", "auto")),
        "launcher": TrainingLauncher(backend="kubernetes", image=IMAGE, namespace=NAMESPACE, gpus=GPUS,
                                     env={k: os.environ[k] for k in SHARED_ENV if k in os.environ}),
    },
    executor=step_executor,
)
