"""Imports follow the data flow: no library imports a package that comes after it.

Layers, bottom to top: what every stage shares (profiles and settings, the lake, benchmark items, text) →
the synthetic crawl (a source of crawls) → crawl → curation → tokens → modeling → training → evaluation →
the Dagster definitions, the CLI and deployment. A module may import its own layer and the layers below,
except the synthetic crawl, which only the top layer may import: the libraries work on any crawl.
Imports inside functions count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "llm_assets"

LAYERS = [
    {"llm_assets", "profiles", "settings", "objectstore", "lake", "benchmarks", "text", "config_checks", "engine"},
    {"synthetic"},
    {"crawl"},
    {"curation"},
    {"tokens"},
    {"modeling"},
    {"training"},
    {"evaluation"},
    {"defs", "deploy", "cli", "__main__", "definitions"},
]
TOP = len(LAYERS) - 1
ONLY_FROM_TOP = {"synthetic"}
LAYER_OF = {name: number for number, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """`(line, imported module)` for every import of the file, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from llm_assets import benchmarks` imports the module named after the package
            found += [(node.lineno, f"{target}.{alias.name}" if target == "llm_assets" else target)
                      for alias in node.names]
    return found


def _top_name(module: str) -> str:
    """The package or base module of `llm_assets.<name>...` (`llm_assets` itself for the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_has_a_layer():
    unknown = sorted({_top_name(_module_name(f)) for f in PACKAGE.rglob("*.py")} - set(LAYER_OF))
    assert not unknown, f"give these a layer in tests/test_layers.py LAYERS: {unknown}"


def test_imports_follow_the_data_flow():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        layer = LAYER_OF.get(_top_name(importer))
        if layer is None:
            continue  # reported by test_every_module_has_a_layer
        for line, imported in _imports(path):
            if imported != "llm_assets" and not imported.startswith("llm_assets."):
                continue
            target = LAYER_OF.get(_top_name(imported))
            if target is None or _top_name(imported) == _top_name(importer):
                continue
            if target > layer or (_top_name(imported) in ONLY_FROM_TOP and layer != TOP):
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} imports {imported} "
                                  f"(layer {_top_name(imported)!r} may not be imported from {_top_name(importer)!r})")
    assert not violations, "imports against the data flow:\n" + "\n".join(violations)


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """A late import inside a function is caught and named with its line."""
    stage = tmp_path / "llm_assets" / "curation"
    stage.mkdir(parents=True)
    (stage / "late.py").write_text("def f():\n    from llm_assets.evaluation.tasks import load_suite\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "llm_assets")
    try:
        test_imports_follow_the_data_flow()
    except AssertionError as failure:
        assert "llm_assets/curation/late.py:2: llm_assets.curation.late imports llm_assets.evaluation.tasks" \
            in str(failure)
    else:
        raise AssertionError("the late import was not reported")
