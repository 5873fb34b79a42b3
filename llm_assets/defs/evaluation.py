"""Evaluation assets: the benchmark suite, scores for every checkpoint, and the model card."""

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset
from dagster._check import CheckError

from llm_assets.benchmarks import QUESTION_TEMPLATE
from llm_assets.curation import report
from llm_assets.curation.pipeline import STAGES
from llm_assets.evaluation.card import evaluation_sections, lineage_order, render_model_card, training_section
from llm_assets.evaluation.cli import bar_plot
from llm_assets.evaluation.cloze import cloze_pairs
from llm_assets.evaluation.scoreboard import score_models
from llm_assets.evaluation.suite import build_suite, malformed_tasks, read_suite, write_suite
from llm_assets.modeling.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from llm_assets.synthetic.crawl_folder import BENCHMARK_FILE, CLOZE_FILE, OPEN_QUESTIONS_FILE

from .common import check, global_kept_files, png_data_uri, spec, table
from .resources import CrawlSource, LakeResource
from .training import SKIPPED_FILE, checkpoint_ready

GROUP = "evaluation"
SCORE_COLUMNS = {"model": "string", "benchmark": "string", "metric": "string", "value": "float"}
CLOZE_COLUMNS = {"model": "string", "task": "string", "fact": "string", "question_acc": "float", "cloze_acc": "float",
                 "gap": "float", "n": "int"}
CONTAMINATION_COLUMNS = {"task": "string", "items": "int", "contaminated": "int", "clean_acc": "float",
                         "contaminated_acc": "float"}
OWNERS = ["team:evaluation"]
CHECKPOINTS = {"base": "base_checkpoint", "assistant": "assistant_checkpoint"}
NO_BENCHMARKS = ("skipped: no benchmark files (a real crawl has no synthetic benchmark); set LLM_ASSETS_BENCHMARKS "
                 "to JSONL or MMLU CSV files to score the models")


@asset(
    group_name=GROUP, owners=OWNERS, kinds={"json"}, code_version="benchmark_suite-3",
    description="Four-choice benchmarks: the synthetic world's questions (split by fine-tuning and held-out "
    "people) and the same facts as a cloze, plus user files (ICL JSONL, lm-eval-style JSONL, MMLU CSV); open "
    "questions ({question, answers} JSONL, the synthetic world's questions without choices) for greedy answers.",
    check_specs=[spec("benchmark_suite", "well_formed", "Every task has items with a valid gold index.",
                      blocking=True)],
)
def benchmark_suite(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource):
    files = crawl.benchmarks()
    synthetic = crawl.synthetic_folder()
    templates = {}
    if synthetic is not None:
        # the synthetic world's queries are bare questions: score them in lm-eval's "Question: …\nAnswer:"
        # form; its cloze statements as written; a crawl from before these files existed has neither
        templates = {str(synthetic / BENCHMARK_FILE): QUESTION_TEMPLATE, str(synthetic / CLOZE_FILE): "{query}"}
        files += [synthetic / name for name in (CLOZE_FILE, OPEN_QUESTIONS_FILE) if (synthetic / name).is_file()]
    suite = build_suite(files, templates)
    with lake.working("benchmark_suite") as folder:
        write_suite(suite, folder / "suite.json")
    tasks, open_tasks, fewshot = suite["tasks"], suite["open_tasks"], suite["fewshot"]
    counts = {task: len(items) for task, items in {**tasks, **open_tasks}.items()}
    formats = {task: items[0]["format"] for task, items in tasks.items() if items}
    skipped = {} if suite["files"] else {"skipped": NO_BENCHMARKS}
    if skipped:
        context.log.warning(NO_BENCHMARKS)
    cloze_of = cloze_pairs(tasks)
    rows = [{"task": task, "items": n, "format": formats.get(task, "open question"), "cloze_of": cloze_of.get(task),
             "fewshot_file": str(fewshot[task]["file"]) if task in fewshot else None} for task, n in counts.items()]
    yield MaterializeResult(metadata={"path": MetadataValue.path(f"{lake.url('benchmark_suite')}/suite.json"),
                                      "dagster/row_count": sum(counts.values()),
                                      "tasks": table(rows, {"task": "string", "items": "int", "format": "string",
                                                            "cloze_of": "string", "fewshot_file": "string"}),
                                      "files": bullet_list(suite["files"] + suite["open_files"]),
                                      **skipped})
    bad = malformed_tasks(tasks)
    yield check("well_formed", not bad and (bool(tasks) or not suite["files"]), tasks=len(tasks), bad_tasks=bad,
                **skipped)


class BenchmarkConfig(Config):
    """How `benchmark_scores` prompts: `template` fills `{query}` for every item (empty: each format's
    lm-eval rendering, the synthetic questions as `Question: …\nAnswer:`)."""

    template: str = ""


@asset(
    deps=["benchmark_suite", "base_checkpoint", "assistant_checkpoint", "token_shards", "training_mixture"],
    group_name=GROUP, owners=OWNERS, kinds={"pytorch", "parquet"}, code_version="benchmark_scores-3",
    description="acc/acc_norm (lm-eval-harness semantics) per benchmark for the base and assistant "
    "checkpoints, question vs cloze accuracy per fact, exact-match/contains of greedy answers to open "
    "questions (chat template for the assistant), validation perplexity and bits per byte, prompt "
    "sensitivity, and contamination.",
    check_specs=[spec("benchmark_scores", "no_contamination",
                      "No benchmark item shares 13-grams with the training data (warns).")],
)
def benchmark_scores(context: AssetExecutionContext, lake: LakeResource, config: BenchmarkConfig):
    size = lake.profile_def().eval
    models = {name: lake.fetch(key) for name, key in CHECKPOINTS.items() if checkpoint_ready(lake.asset_dir(key))}
    if "base" not in models:
        raise FileNotFoundError(f"benchmark_scores: no trained model in {lake.url('base_checkpoint')}; "
                                "materialize base_checkpoint first")
    tasks, fewshot, open_tasks = read_suite(lake.fetch("benchmark_suite") / "suite.json")
    with lake.working("benchmark_scores") as out:
        results = score_models(models, tasks, lake.fetch("token_shards"),
                               global_kept_files(lake, "training_mixture"), out, shots=size.shots,
                               batch_size=size.batch_size, max_items=size.max_items,
                               template=config.template or None, fewshot=fewshot, open_tasks=open_tasks)
    scores: pl.DataFrame = results["table"]
    headline = {f"{r['model']}/{r['benchmark']}/{r['metric']}": float(r["value"])
                for r in scores.iter_rows(named=True)}
    context.log.info("scores:\n%s", (out / "scores.md").read_text())
    skipped = [key for name, key in CHECKPOINTS.items() if name not in models]
    yield MaterializeResult(metadata={
        "path": MetadataValue.path(f"{lake.url('benchmark_scores')}/scores.parquet"),
        "dagster/row_count": scores.height,
        **scores_metadata(scores, results),
        **headline,
        "models": ", ".join(sorted(models)),
        **({"not_scored": table([{"model": k, "reason": skipped_reason(lake, k)} for k in skipped],
                                {"model": "string", "reason": "string"})} if skipped else {}),
        **({"notes": bullet_list(results["notes"])} if results["notes"] else {}),
    })
    leaked = (results["contamination"] or {}).get("contaminated_items", 0)
    extra = {"skipped": "no benchmark tasks to check"} if results["contamination"] is None else {}
    yield check("no_contamination", leaked == 0, blocking_severity=False, contaminated_items=leaked, **extra)


def bullet_list(items: list) -> MetadataValue:
    return MetadataValue.md("\n".join(f"- {item}" for item in items) or "none")


def scores_metadata(scores: pl.DataFrame, results: dict) -> dict:
    """The scores, question-vs-cloze and contamination as tables, and one plot per metric sized for the UI."""
    meta = {"scores": table(scores.to_dicts(), SCORE_COLUMNS)}
    if results.get("question_vs_cloze"):
        meta["question_vs_cloze"] = table(results["question_vs_cloze"], CLOZE_COLUMNS)
    contamination = results["contamination"]
    if contamination is not None:
        rows = [{"task": task, **row} for task, row in contamination["tasks"].items()]
        meta["contamination"] = table(rows, CONTAMINATION_COLUMNS)
        meta["contaminated_items"] = contamination["contaminated_items"]
        meta["contamination_ngram"] = contamination["n"]
    else:
        meta["contamination"] = "not scanned: no benchmark tasks"
    plotted = scores.filter(pl.col("metric").is_in(["acc", "acc_norm"]))
    if not plotted.is_empty():
        with tempfile.TemporaryDirectory() as folder:
            images = []
            for metric in plotted["metric"].unique(maintain_order=True):
                png = bar_plot(plotted.filter(pl.col("metric") == metric), Path(folder) / f"{metric}.png",
                               title=f"Benchmark scores: {metric}")
                images.append(f"![{metric}]({png_data_uri(png)})")
        meta["scores_plot"] = MetadataValue.md("\n\n".join(images))
    return meta


def skipped_reason(lake: LakeResource, key: str) -> str:
    marker = lake.asset_dir(key) / SKIPPED_FILE
    return marker.read_text().strip() if marker.exists() else f"{key} has no {WEIGHTS_FILE}"


def upstream_assets(context: AssetExecutionContext) -> list[str]:
    """The assets upstream of this one in the code location's whole asset graph, farthest first (the graph of
    a run's job stops short of raw_crawl)."""
    try:
        graph = context.repository_def.asset_graph
    except CheckError:  # `build` executes its jobs in process, without a repository
        from . import build_definitions  # the package imports this module first

        graph = build_definitions().resolve_asset_graph()
    parents = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
               for key in graph.get_all_asset_keys()}
    return lineage_order(parents, context.asset_key.to_user_string())


def upstream_lineage(context: AssetExecutionContext, keys: list[str]) -> list[dict]:
    """Code version, run id and time of the latest materialization of each of `keys` that has one."""
    rows = []
    for key in keys:
        event = context.instance.get_latest_materialization_event(AssetKey(key))
        if event is None:
            continue
        tags = event.asset_materialization.tags or {}
        rows.append({"asset": key, "code_version": tags.get("dagster/code_version"), "run_id": event.run_id,
                     "materialized_at": datetime.fromtimestamp(event.timestamp, UTC).isoformat()})
    return rows


def tokenizer_figures(context: AssetExecutionContext) -> dict:
    """The scalar metadata of the tokenizer's latest materialization (its path left out)."""
    event = context.instance.get_latest_materialization_event(AssetKey("tokenizer"))
    if event is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()
            if isinstance(v.value, int | float | str) and k != "path"}


def lake_relative(path: str) -> str:
    """An image in another asset's folder of the lake, as a link relative to the card's folder."""
    return f"../{Path(path).parent.name}/{Path(path).name}"


def embedded(path: str) -> str:
    return png_data_uri(Path(path)) if Path(path).is_file() else path


def curation_stages(lake: LakeResource, parts: list[str]) -> list[dict]:
    """Counts per curation stage, with the mixture's distinct documents (its kept rows count repeats)."""
    stages = report.stage_counts(lake.path, list(STAGES), parts)
    for stage in stages:
        if stage["stage"] == "training_mixture":
            split = report.split_documents(global_kept_files(lake, "training_mixture"))
            stage["documents"] = split["train"] + split["validation"]
    return stages


@asset(
    deps=["benchmark_scores"], group_name=GROUP, owners=OWNERS, kinds={"markdown"},
    code_version="model_card-1",
    description="A markdown model card generated from lineage: data at every stage, filters and drop "
    "rates, tokenizer, model configuration, training curves, scores, contamination, and the code version "
    "and run id of every upstream asset.",
    check_specs=[spec("model_card", "complete", "The card records lineage for every upstream asset.")],
)
def model_card(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource):
    scores_dir = lake.fetch("benchmark_scores")
    results = json.loads((scores_dir / "results.json").read_text())
    base = lake.fetch("base_checkpoint")
    sources = crawl.resolve()
    upstream = upstream_assets(context)
    lineage = upstream_lineage(context, upstream)
    info = {
        "model_name": f"llm_assets-{lake.profile}",
        "run_id": context.run.run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sources": report.source_counts(lake.path, sources),
        "stages": curation_stages(lake, list(sources)),
        "tokenizer": tokenizer_figures(context),
        "model_config": json.loads((base / CONFIG_FILE).read_text()),
        "training": training_section(json.loads((base / "metrics.json").read_text())),
        **evaluation_sections(results),
        "scores_png": str(scores_dir / "scores.png") if (scores_dir / "scores.png").exists() else None,
        "notes": [f"{key}: {skipped_reason(lake, key)}" for key in CHECKPOINTS.values()
                  if not checkpoint_ready(lake.asset_dir(key))] + results.get("notes", []),
        "lineage": lineage,
    }
    with lake.working("model_card") as folder:
        # the file links the images beside it in the lake; the UI's copy carries them, a browser has no lake
        (folder / "MODEL_CARD.md").write_text(render_model_card(info, image_link=lake_relative))
    yield MaterializeResult(metadata={"path": MetadataValue.path(f"{lake.url('model_card')}/MODEL_CARD.md"),
                                      "card": MetadataValue.md(render_model_card(info, image_link=embedded))})
    missing = [k for k in upstream if k not in {row["asset"] for row in lineage}]
    yield check("complete", not missing, blocking_severity=False, missing=missing)
