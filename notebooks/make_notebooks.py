"""Writes the project's notebooks from plain cell lists (keeps them reviewable as Python).

    python notebooks/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """import os
from pathlib import Path

import duckdb
import matplotlib.pyplot as plt
import polars as pl

# the lake of one profile: LLM_ASSETS_LAKE, else ../data/<LLM_ASSETS_PROFILE or default>
LAKE = Path(os.environ.get("LLM_ASSETS_LAKE")
            or Path("..") / "data" / os.environ.get("LLM_ASSETS_PROFILE", "default")).resolve()
print("lake:", LAKE)
STAGES = ["raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
          "quality_documents", "training_mixture"]
"""

EXPLORATION = [
    new_markdown_cell("# Corpus exploration\n\nWhat each curation stage kept and removed, and why. "
                      "Every stage writes `kept/` and `removed/` Parquet under the lake; DuckDB reads "
                      "them in place."),
    new_code_cell(SETUP),
    new_markdown_cell("## Documents per stage"),
    new_code_cell("""def count(stage, side):
    files = list((LAKE / stage / side).glob("*.parquet"))
    if not files:
        return 0
    return duckdb.sql(f"select count(*) from read_parquet('{LAKE / stage / side}/*.parquet')").fetchall()[0][0]

stages = pl.DataFrame({"stage": STAGES,
                       "kept": [count(s, "kept") for s in STAGES],
                       "removed": [count(s, "removed") for s in STAGES]})
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.bar(stages["stage"], stages["kept"], label="kept")
ax.bar(stages["stage"], stages["removed"], bottom=stages["kept"], label="removed")
ax.set_ylabel("documents"); ax.legend(); plt.xticks(rotation=25, ha="right"); plt.tight_layout()
stages"""),
    new_markdown_cell("## Why documents were removed"),
    new_code_cell("""removed = duckdb.sql(f\"\"\"
    select stage, split_part(reason, ':', 1) as reason, count(*) as documents
    from read_parquet('{LAKE}/*/removed/*.parquet', union_by_name = true)
    group by all order by documents desc\"\"\").pl()
fig, ax = plt.subplots(figsize=(9, 4))
ax.barh(removed["stage"] + " / " + removed["reason"], removed["documents"])
ax.invert_yaxis(); ax.set_xlabel("documents removed"); plt.tight_layout()
removed"""),
    new_markdown_cell("## A few removed samples per reason"),
    new_code_cell("""duckdb.sql(f\"\"\"
    select stage, reason, url, left(sample, 120) as sample
    from read_parquet('{LAKE}/*/removed/*.parquet', union_by_name = true)
    qualify row_number() over (partition by stage, split_part(reason, ':', 1) order by url) <= 2
    order by stage, reason\"\"\").pl()"""),
    new_markdown_cell("## Language mix and sites after extraction"),
    new_code_cell("""docs = pl.read_parquet(LAKE / "extracted_documents" / "kept" / "*.parquet")
print(docs.group_by("language").len().sort("len", descending=True))
docs.group_by("host").len().sort("len", descending=True).head(15)"""),
    new_markdown_cell("## Why is this URL not in my training data?"),
    new_code_cell("""url = duckdb.sql(f"select url from read_parquet('{LAKE}/*/removed/*.parquet', union_by_name = true) "
                 "order by url limit 1").fetchall()[0][0]
duckdb.sql(f\"\"\"select stage, reason from read_parquet('{LAKE}/*/removed/*.parquet', union_by_name = true)
              where url = '{url}'\"\"\").pl()"""),
    new_markdown_cell("## The training mixture"),
    new_code_cell("""mix = pl.read_parquet(LAKE / "training_mixture" / "kept" / "*.parquet")
(mix.group_by("split", "site")
    .agg(pl.len().alias("rows"), pl.col("text").str.len_chars().sum().alias("chars"))
    .sort("split", "rows", descending=[False, True]))"""),
]

MODEL = [
    new_markdown_cell("# Models\n\nLoss curves, benchmark scores and a few generations from the base and "
                      "assistant checkpoints."),
    new_code_cell(SETUP + "\nimport json\n"),
    new_markdown_cell("## Training curves"),
    new_code_cell("""fig, ax = plt.subplots(figsize=(8, 3.5))
for name in ("base_checkpoint", "assistant_checkpoint"):
    metrics_file = LAKE / name / "metrics.json"
    if not metrics_file.exists():
        continue
    metrics = json.loads(metrics_file.read_text())
    history = metrics.get("history", [])
    if history:
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], label=f"{name} train")
    validation = metrics.get("validations", [])
    if validation:
        ax.plot([h["step"] for h in validation], [h["loss"] for h in validation], "o-",
                label=f"{name} validation")
    print(name, {k: v for k, v in metrics.items() if not isinstance(v, list | dict)})
ax.set_xlabel("step"); ax.set_ylabel("loss"); ax.legend(); plt.tight_layout()"""),
    new_markdown_cell("## Benchmark scores"),
    new_code_cell("""scores_file = LAKE / "benchmark_scores" / "scores.parquet"
if scores_file.exists():
    scores = pl.read_parquet(scores_file)
    display(scores)
else:
    print("benchmark_scores is not materialized yet")"""),
    new_markdown_cell("## Generations"),
    new_code_cell("""from llm_assets.modeling.checkpoint import load_checkpoint
from llm_assets.modeling.generate import generate

model, tokenizer = load_checkpoint(LAKE / "base_checkpoint")
for prompt in ["The city of", "She studied"]:
    text = "".join(generate(model, tokenizer, prompt, max_new_tokens=24, temperature=0.0))
    print(repr(prompt), "->", repr(text))"""),
]


def write(name: str, cells: list) -> None:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    write("exploration.ipynb", EXPLORATION)
    write("models.ipynb", MODEL)
