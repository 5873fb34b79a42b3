"""docs/extending.md stays true: the files it names exist, and the structure each recipe relies on holds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "extending.md"
PACKAGE = ROOT / "llm_assets"


def _sections() -> dict[str, list[str]]:
    """Section title -> the paths of its `Files:` list."""
    sections: dict[str, list[str]] = {}
    title, listing = None, False
    for line in GUIDE.read_text().splitlines():
        if line.startswith("## "):
            title, listing = line[3:], False
            sections[title] = []
        elif line.strip() == "Files:":
            listing = True
        elif listing and line.startswith("- `"):
            sections[title].append(line[3:line.index("`", 3)])
        elif listing and line.strip():
            listing = False
    return sections


def _modules():
    for path in PACKAGE.rglob("*.py"):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_every_named_file_exists_and_each_recipe_is_short():
    sections = _sections()
    assert set(sections) == {"Add a filter (a keep/drop rule)", "Add a curation stage", "Add a benchmark file format",
                             "Swap the tokenizer trainer or library"}
    for title, files in sections.items():
        assert 2 <= len(files) <= 5, title
        for name in files:
            path = ROOT / name
            # `<family>.py` stands for a new file: its folder must exist
            assert (path.parent if "<" in name else path).exists(), f"{title}: {name}"


def test_only_the_tokenizer_module_imports_tokenizers_and_names_its_file():
    importers, namers = set(), set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "tokenizers" for a in node.names):
                importers.add(path.relative_to(ROOT).as_posix())
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tokenizers":
                importers.add(path.relative_to(ROOT).as_posix())
            if isinstance(node, ast.Constant) and node.value == "tokenizer.json":
                namers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"llm_assets/tokens/tokenizer.py"}
    assert namers == {"llm_assets/tokens/tokenizer.py"}


def test_every_keep_drop_rule_lives_in_the_filters_package():
    """A class that answers `reasons(docs)` is a filter: it belongs in curation/filters/, in a stage's list."""
    outside = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            rule = isinstance(node, ast.ClassDef) and any(isinstance(f, ast.FunctionDef) and f.name == "reasons"
                                                          for f in node.body)
            if rule and "curation/filters" not in path.as_posix():
                outside.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert outside == []


def test_no_module_but_the_registry_branches_on_a_format_name():
    """Format rules live in `benchmarks.FORMATS`; a comparison with a format's name elsewhere is a second place
    (the lm-eval parity writer excepted: it writes each published dataset layout)."""
    from llm_assets.benchmarks import FORMATS

    names = "|".join(re.escape(f.name) for f in FORMATS if f.name != "question")
    pattern = re.compile(rf"""(==|!=|\bin)\s*\(?["']({names})["']""")
    allowed = {"llm_assets/benchmarks.py", "llm_assets/evaluation/lm_eval_mirror.py"}
    found = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path, _ in _modules()
             for m in pattern.finditer(path.read_text()) if path.relative_to(ROOT).as_posix() not in allowed]
    assert found == []


def test_the_curation_assets_are_made_from_the_stage_table():
    from llm_assets.curation.stages import STAGES
    from llm_assets.defs.curation import ASSETS

    assert list(ASSETS) == [s.name for s in STAGES if s.name != "raw_crawl"]
    for name, asset in ASSETS.items():
        record = next(s for s in STAGES if s.name == name)
        assert {c.name for c in asset.check_specs} == {c.name for c in record.checks}
