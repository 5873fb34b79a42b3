"""One crawl partition per WARC file: shards run in parallel on a cluster; a sensor adds new files."""

from dagster import DynamicPartitionsDefinition

warc_files = DynamicPartitionsDefinition(name="warc_files")
