"""Resources: the lake, the crawl sources, and the profile; all set from the environment by default."""


import dataclasses
import fcntl
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource

from llm_assets import profiles
from llm_assets.crawl import resolve_sources
from llm_assets.engine import open_engine
from llm_assets.objectstore import is_remote, lake_path, mirror_dir, pull, push, uri
from llm_assets.synthetic import generate_crawl, is_current_synthetic_crawl, is_synthetic_crawl
from llm_assets.synthetic.crawl_folder import BENCHMARK_FILE, SFT_FILE

log = logging.getLogger(__name__)

CRAWL_ENV = "LLM_ASSETS_CRAWL"  # whitespace-separated sources; empty = the synthetic crawl
SEED_ENV = "LLM_ASSETS_SEED"
BENCHMARK_ENV = "LLM_ASSETS_BENCHMARKS"
SFT_ENV = "LLM_ASSETS_SFT"
REFERENCE_ENV = "LLM_ASSETS_REFERENCE"  # whitespace-separated reference text files for the quality model


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class LakeResource(ConfigurableResource):
    """Root folder (or object-store URL, `s3://bucket/prefix`) of the lake; one sub-folder per profile so
    profiles never overwrite each other."""

    root: str
    profile: str

    @property
    def path(self) -> Path:
        """The profile's lake: a `Path`, or a `UPath` when the root is a URL."""
        return lake_path(self.root) / self.profile

    @property
    def remote(self) -> bool:
        return is_remote(self.path)

    def asset_dir(self, key: str) -> Path:
        return self.path / key

    def url(self, key: str) -> str:
        """The asset folder as the `path` metadata shows it: a local path or the object-store URL."""
        return uri(self.asset_dir(key))

    def fetch(self, key: str) -> Path:
        """A local folder holding the asset's files, for libraries that need local paths (a tokenizer,
        memory-mapped shards, checkpoints): the folder itself on a local lake, else its synced mirror."""
        folder = self.asset_dir(key)
        return pull(folder) if self.remote else folder

    @contextmanager
    def working(self, key: str):
        """The local folder an asset writes its files in. On an object-store lake it is the mirror of the
        asset's folder, pulled first (a rerun resumes from what is there) and pushed after the step, also
        when it fails, so what the step finished (a checkpoint) is kept as on a local lake."""
        folder = self.asset_dir(key)
        if not self.remote:
            folder.mkdir(parents=True, exist_ok=True)
            yield folder
            return
        local = pull(folder)
        try:
            yield local
        finally:
            counts = push(local, folder)
            log.info("%s: %d file(s) sent to %s, %d removed there", key, counts["uploaded"], uri(folder),
                     counts["deleted"])

    def profile_def(self) -> profiles.Profile:
        """The profile's sizes. Its `curation` is the published set: a crawl's own set (synthetic or not)
        is `CrawlSource.curation()`."""
        return profiles.get_profile(self.profile)


class CrawlSource(ConfigurableResource):
    """Where the WARC files come from. With no sources, the synthetic crawl of `seed` (made on first use)."""

    sources: list[str]
    profile: str
    data_root: str
    # an environment variable of more sources, read when used: a crawl URL's password or signature then never
    # enters the resource config that Dagster stores with every run's job snapshot
    sources_env: str = ""
    seed: int = 0
    benchmark_files: list[str] = []
    sft_files: list[str] = []
    reference_files: list[str] = []

    def synthetic_dir(self) -> Path:
        """Where the synthetic crawl is made: in the lake's root folder, or, for a lake on an object store,
        in the local mirror of its root (the crawl is a local source the raw_crawl step reads)."""
        root = lake_path(self.data_root)
        local = mirror_dir(root) if is_remote(root) else root
        return local / "synthetic_crawl" / f"{self.profile}-seed{self.seed}"

    def ensure_synthetic(self) -> Path:
        out = self.synthetic_dir()
        with _file_lock(out.parent / f".{out.name}.lock"):
            if not is_current_synthetic_crawl(out):  # an older generator's crawl is written again
                log.info("generating the synthetic crawl (profile %s, seed %s) in %s", self.profile,
                         self.seed, out)
                generate_crawl(out, self.seed, profiles.get_profile(self.profile).synthetic,
                               profile_name=self.profile)
        return out

    def source_list(self) -> list[str]:
        """The configured sources: `sources`, then those of `$<sources_env>`."""
        return [*self.sources, *(_split_env(self.sources_env) if self.sources_env else [])]

    def resolve(self) -> dict[str, str]:
        """`{partition_key: uri}` for every WARC file of the configured sources."""
        sources = self.source_list() or [str(self.ensure_synthetic())]
        return resolve_sources(sources)

    def synthetic_folder(self) -> Path | None:
        """The synthetic crawl folder these sources are, if they are one (its sft/benchmark files apply)."""
        sources = self.source_list()
        if not sources:
            return self.ensure_synthetic()
        if len(sources) == 1 and is_synthetic_crawl(Path(sources[0])):
            return Path(sources[0])
        return None

    def curation(self) -> profiles.CurationConfig:
        """The curation values for this crawl: SYNTHETIC_WEB's for the synthetic crawl, the published ones
        for any other (LLM_ASSETS_CONFIG wins over both), with `reference_files` added."""
        cfg = profiles.curation_for(profiles.get_profile(self.profile), self.synthetic_folder() is not None)
        if self.reference_files:
            cfg = dataclasses.replace(cfg, reference_files=(*cfg.reference_files, *self.reference_files))
        return cfg

    def benchmarks(self) -> list[Path]:
        """Benchmark files: the synthetic world's `benchmark.jsonl` where it applies, plus the user's."""
        found = [Path(p) for p in self.benchmark_files]
        synthetic = self.synthetic_folder()
        if synthetic is not None:
            found.insert(0, synthetic / BENCHMARK_FILE)
        return found

    def sft_sources(self) -> list[Path]:
        found = [Path(p) for p in self.sft_files]
        synthetic = self.synthetic_folder()
        if synthetic is not None:
            found.insert(0, synthetic / SFT_FILE)
        return found


def _split_env(name: str) -> list[str]:
    return os.environ.get(name, "").split()


class EngineResource(ConfigurableResource):
    """Where the global curation stages run: `local` (this process) or `ray` (a Ray cluster at
    `ray_address`, or a local one of `workers` CPUs started for the step). Empty fields are read from
    $LLM_ASSETS_ENGINE, $LLM_ASSETS_RAY_ADDRESS and $LLM_ASSETS_RAY_WORKERS when the step runs."""

    name: str = ""
    ray_address: str = ""
    workers: int = 0

    @contextmanager
    def open(self):
        with open_engine(self.name or None, self.ray_address or None, self.workers or None) as running:
            yield running


def default_resources() -> dict:
    """Resources from the environment: LLM_ASSETS_PROFILE, LLM_ASSETS_DATA_DIR, LLM_ASSETS_CRAWL, ..."""
    profile = profiles.get_profile().name
    root = profiles.data_dir()
    return {
        "lake": LakeResource(root=root, profile=profile),
        "crawl": CrawlSource(
            sources=[],
            sources_env=CRAWL_ENV,
            profile=profile,
            data_root=root,
            seed=int(os.environ.get(SEED_ENV, "0")),
            benchmark_files=_split_env(BENCHMARK_ENV),
            sft_files=_split_env(SFT_ENV),
            reference_files=_split_env(REFERENCE_ENV),
        ),
        "engine": EngineResource(),
    }
