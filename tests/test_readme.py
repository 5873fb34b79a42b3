"""The README's asset table says what the graph is: every asset once, with exactly its inputs, and a
library module that exists."""

from __future__ import annotations

import re

from conftest import REPO

from llm_assets.definitions import defs


def _asset_table() -> dict[str, tuple[set[str], list[str]]]:
    """asset -> (inputs, library paths) from the README's `| asset | inputs | library | writes |` table."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| asset | inputs | library | writes |"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        asset, inputs, library = (cell.strip() for cell in line.strip("|").split("|")[:3])
        rows[asset.strip("`")] = (set(re.findall(r"`([a-z_]+)`", inputs)), re.findall(r"`([a-z_/.]+)`", library))
    return rows


def test_readme_asset_table_matches_the_graph():
    graph = defs.resolve_asset_graph()
    actual = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
              for key in graph.get_all_asset_keys()}
    table = _asset_table()
    assert set(table) == set(actual), (sorted(set(actual) - set(table)), sorted(set(table) - set(actual)))
    wrong = {asset: (inputs, actual[asset]) for asset, (inputs, _) in table.items() if inputs != actual[asset]}
    assert not wrong, f"README inputs (written, graph): {wrong}"
    for asset, (_, paths) in table.items():
        for path in paths:
            assert (REPO / "llm_assets" / path).exists(), f"{asset}: llm_assets/{path} does not exist"
