from llm_assets.defs import build_definitions

defs = build_definitions()
