"""The model card's lineage comes from the asset graph: every upstream asset, farthest first."""

from llm_assets.evaluation.card import lineage_order


def test_lineage_lists_every_upstream_asset_after_what_it_reads():
    from llm_assets.defs import build_definitions

    graph = build_definitions().resolve_asset_graph()
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
               for k in graph.get_all_asset_keys()}
    lineage = lineage_order(parents, "model_card")
    assert lineage == ["raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
                       "quality_classifier", "quality_documents", "training_mixture", "tokenizer", "token_shards",
                       "base_checkpoint", "sft_examples", "assistant_checkpoint", "benchmark_suite",
                       "benchmark_scores"]
    for position, asset in enumerate(lineage):
        assert parents[asset] <= set(lineage[:position]), asset


def test_lineage_order_breaks_ties_by_name_and_ignores_other_branches():
    parents = {"card": {"scores"}, "scores": {"model", "suite"}, "model": {"data"}, "suite": set(),
               "data": set(), "unrelated": {"data"}}
    assert lineage_order(parents, "card") == ["data", "model", "suite", "scores"]
    assert lineage_order(parents, "data") == []
