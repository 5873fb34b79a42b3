"""`build`'s summary: per asset, rows, size, time, check outcomes, notes and errors of its runs."""

import sys
from collections import defaultdict

from dagster import DagsterInstance

from llm_assets.defs import all_assets
from llm_assets.objectstore import is_remote, lake_path


def user_error(error) -> str:
    """The message a user needs from a step failure: the innermost cause of Dagster's wrapper errors
    (`DagsterExecutionStepExecutionError: Error occurred while executing op ...`), without the exception
    type, on one line."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    if error.cls_name and message.split(": ", 1)[0].rsplit(".", 1)[-1] == error.cls_name and ": " in message:
        message = message.split(": ", 1)[1]
    return " ".join(message.split()) or error.cls_name or "failed"


def new_entry() -> dict:
    return {"rows": None, "bytes": 0, "seconds": 0.0, "materialized": 0, "checks": {}, "errors": [], "notes": [],
            "truncated_body": 0}


def summarize_run(result, instance: DagsterInstance) -> dict:
    """Per asset: rows, size, duration, check outcomes, notes (why a stage was skipped) and errors of one
    in-process run."""
    out: dict = defaultdict(new_entry)
    durations = {s.step_key: (s.end_time or 0) - (s.start_time or 0)
                 for s in instance.get_run_step_stats(result.run_id)}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        entry = out[mat.asset_key.to_user_string()]
        entry["materialized"] += 1
        meta = mat.metadata
        if "dagster/row_count" in meta:
            entry["rows"] = (entry["rows"] or 0) + int(meta["dagster/row_count"].value)
        if "path" in meta:
            entry["bytes"] += _size(str(meta["path"].value))
        if "skipped" in meta and isinstance(meta["skipped"].value, str):  # raw_crawl's is a count per reason
            entry["notes"].append(meta["skipped"].value)
        entry["truncated_body"] += _truncated_bodies(meta)
        entry["seconds"] += durations.get(event.step_key, 0.0)
    for check in result.get_asset_check_evaluations():
        entry = out[check.asset_key.to_user_string()]
        name = check.check_name
        prev = entry["checks"].get(name, True)
        entry["checks"][name] = prev and check.passed
    for failure in result.get_step_failure_events():
        message = user_error(failure.step_failure_data.error)
        for key in _step_assets(failure.step_key):
            out[key]["errors"].append(message)
    return {k: dict(v) for k, v in out.items()}


def _truncated_bodies(meta) -> int:
    """raw_crawl's count of bodies cut at max_body_bytes (its `repaired` metadata); 0 for other assets."""
    repaired = meta.get("repaired")
    value = getattr(repaired, "value", None)
    return int(value.get("truncated_body", 0)) if isinstance(value, dict) else 0


def _step_assets(step_key: str) -> list[str]:
    """The asset keys an op step materializes (an op may produce several assets)."""
    op_name = step_key.split("[")[0]
    for assets_def in all_assets():
        if assets_def.op.name == op_name:
            return [k.to_user_string() for k in assets_def.keys]
    return [op_name]


def _size(location: str) -> int:
    """Bytes of the file or folder at `location` (a local path or an object-store URL); 0 when it is gone."""
    path = lake_path(location)
    if is_remote(path):
        try:
            return int(path.fs.du(path.path))
        except FileNotFoundError:
            return 0
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def merge(total: dict, run: dict) -> None:
    for key, entry in run["assets"].items():
        agg = total.setdefault(key, new_entry())
        for field in ("bytes", "seconds", "materialized", "truncated_body"):
            agg[field] += entry.get(field, 0)
        if entry["rows"] is not None:
            agg["rows"] = (agg["rows"] or 0) + entry["rows"]
        for name, passed in entry["checks"].items():
            agg["checks"][name] = agg["checks"].get(name, True) and passed
        agg["errors"].extend(entry["errors"])
        agg["notes"].extend(entry["notes"])


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_summary(order: list[str], totals: dict, skipped: set[str], stream=sys.stdout) -> None:
    header = f"{'asset':<24} {'status':<10} {'parts':>5} {'rows':>9} {'size':>10} {'time':>8}  checks"
    print("\n" + header + "\n" + "-" * len(header), file=stream)
    for key in order:
        entry = totals.get(key)
        if key in skipped or entry is None:
            print(f"{key:<24} {'skipped':<10}", file=stream)
            continue
        passed = sum(entry["checks"].values())
        failed = [n for n, ok in entry["checks"].items() if not ok]
        status = "FAILED" if entry["errors"] else "ok"
        checks = f"{passed} passed" + (f", failed: {', '.join(failed)}" if failed else "")
        rows = "-" if entry["rows"] is None else entry["rows"]
        print(f"{key:<24} {status:<10} {entry['materialized']:>5} {rows:>9} "
              f"{_fmt_bytes(entry['bytes']):>10} {entry['seconds']:>7.1f}s  {checks}", file=stream)
        if entry.get("truncated_body"):
            print(f"    note: {entry['truncated_body']} bodies cut at max_body_bytes (truncated_body)", file=stream)
        for note in dict.fromkeys(entry.get("notes", [])):
            print(f"    note: {note}", file=stream)
        for err in dict.fromkeys(entry["errors"]):
            print(f"    error: {err}", file=stream)
