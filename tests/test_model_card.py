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


def test_card_counts_add_up_or_say_why_and_settings_are_rows():
    from llm_assets.evaluation.card import render_model_card

    stages = [{"stage": "raw_crawl", "kept": 211, "removed": None, "reasons": {}},
              {"stage": "extracted_documents", "kept": 183, "removed": 28, "reasons": {"language:de": 28}},
              {"stage": "quality_documents", "kept": 138, "removed": 45, "reasons": {"quality_model": 45}},
              {"stage": "training_mixture", "kept": 174, "removed": 5, "documents": 131,
               "reasons": {"downsampled": 5}}]
    card = render_model_card({"stages": stages, "model_config": {"format": "DecoderLM",
                                                                  "model": {"n_layer": 2, "d_model": 64}}})
    rows: dict[str, list[str]] = {}
    for line in card.splitlines():  # the first row of each name: the stage table comes before the reasons
        if line.startswith("| ") and "|---" not in line:
            rows.setdefault(line.split("|")[1].strip(), [c.strip() for c in line.split("|")[2:-1]])
    assert rows["extracted_documents"][:3] == ["211", "183", "28"]  # input: what the stage before kept
    assert rows["quality_documents"][:3] == ["183", "138", "45"] and rows["quality_documents"][-1] == ""
    assert rows["training_mixture"][0] == "138"
    assert "131 distinct documents" in rows["training_mixture"][-1] and "upsampling" in rows["training_mixture"][-1]
    assert rows["model.n_layer"] == ["2"] and rows["model.d_model"] == ["64"]  # no dict in a cell
    assert "{" not in card


def test_card_images_are_linked_as_the_caller_says(tmp_path):
    from llm_assets.evaluation.card import render_model_card

    info = {"training": {"curve_png": str(tmp_path / "base_checkpoint" / "loss_curve.png"), "steps": 3},
            "scores": {"base/benchmark": {"acc": 0.5, "acc_norm": 0.4, "n": 8}},
            "scores_png": str(tmp_path / "benchmark_scores" / "scores.png")}
    assert f"![training curves]({tmp_path}/base_checkpoint/loss_curve.png)" in render_model_card(info)
    card = render_model_card(info, image_link=lambda path: "data:image/png;base64,AAAA")
    assert card.count("](data:image/png;base64,AAAA)") == 2 and str(tmp_path) not in card
