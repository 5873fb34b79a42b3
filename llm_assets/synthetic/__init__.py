"""A deterministic synthetic world and a real WARC crawl of a web written about it, with ground truth."""

from llm_assets.synthetic.crawl_folder import (
    MARKER_FILE,
    generate_crawl,
    is_current_synthetic_crawl,
    is_synthetic_crawl,
)

__all__ = ["MARKER_FILE", "generate_crawl", "is_current_synthetic_crawl", "is_synthetic_crawl"]
