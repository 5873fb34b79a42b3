"""Curation: raw crawl records to a training mixture, one stage per module.

extraction (HTML to text, language) -> filtration (URL, NSFW, toxicity, PII) -> dedup (boilerplate lines,
exact, MinHash) -> quality (heuristics and a linear model) -> mixture (decontamination, site weights,
train/validation split). `pipeline.curate` runs them all without Dagster; `groundtruth` scores a result
against the synthetic crawl's labels. Submodules are imported where used, so importing this package
loads no models.
"""
