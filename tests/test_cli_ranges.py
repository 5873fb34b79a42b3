"""Every numeric option of every verb is range-checked by the real parser: a bad value is one `error:` line and
exit status 2, before any model or file is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llm_assets.__main__ import parser

REPO = Path(__file__).resolve().parents[1]

# (verb and its required arguments, option, bad value, what the error line must say)
BAD = [
    (["generate", "ckpt", "--prompt", "hi"], "--top-p", "2", "must be above 0 and at most 1"),
    (["generate", "ckpt", "--prompt", "hi"], "--top-p", "0", "must be above 0 and at most 1"),
    (["generate", "ckpt", "--prompt", "hi"], "--top-k", "-3", "must be at least 1"),
    (["generate", "ckpt", "--prompt", "hi"], "--top-k", "0", "must be at least 1"),
    (["generate", "ckpt", "--prompt", "hi"], "--temperature", "nan", "not a finite number"),
    (["generate", "ckpt", "--prompt", "hi"], "--temperature", "inf", "not a finite number"),
    (["generate", "ckpt", "--prompt", "hi"], "--temperature", "-1", "must be 0 or more"),
    (["generate", "ckpt", "--prompt", "hi"], "--max-new-tokens", "0", "must be at least 1"),
    (["generate", "ckpt", "--prompt", "hi"], "--seed", "-1", "must be 0 or more"),
    (["chat", "ckpt"], "--top-p", "-0.5", "must be above 0 and at most 1"),
    (["chat", "ckpt"], "--max-new-tokens", "-1", "must be at least 1"),
    (["chat", "ckpt"], "--top-k", "2.5", "not a whole number"),
    (["evaluate", "ckpt", "--tasks", "t.jsonl"], "--shots", "-1", "must be 0 or more"),
    (["evaluate", "ckpt", "--tasks", "t.jsonl"], "--max-new-tokens", "-1", "must be at least 1"),
    (["evaluate", "ckpt", "--tasks", "t.jsonl"], "--max-items", "-1", "must be at least 1"),
    (["evaluate", "ckpt", "--tasks", "t.jsonl"], "--max-items", "0", "must be at least 1"),
    (["evaluate", "ckpt", "--tasks", "t.jsonl"], "--batch-size", "0", "must be at least 1"),
    (["evaluate", "ckpt", "--tasks", "t.jsonl"], "--fewshot-seed", "-2", "must be 0 or more"),
    (["build"], "--workers", "0", "must be at least 1"),
    (["build"], "--seed", "x", "not a whole number"),
    (["synth-crawl", "--out", "o"], "--seed", "-5", "must be 0 or more"),
]


@pytest.mark.parametrize(("verb", "option", "value", "says"), BAD, ids=[f"{b[0][0]} {b[1]} {b[2]}" for b in BAD])
def test_out_of_range_values_are_refused_by_the_parser(verb, option, value, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args([*verb, option, value])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and option in errors[0] and says in errors[0], errors


@pytest.mark.parametrize(("option", "value", "parsed"), [
    ("--top-p", "1", 1.0), ("--top-p", "0.9", 0.9), ("--top-k", "1", 1), ("--temperature", "0", 0.0),
    ("--max-new-tokens", "1", 1), ("--seed", "0", 0)])
def test_edge_values_in_range_are_kept(option, value, parsed):
    args = parser().parse_args(["generate", "ckpt", "--prompt", "hi", option, value])
    assert getattr(args, option.removeprefix("--").replace("-", "_")) == parsed


def test_the_command_line_exits_2_with_one_error_line():
    proc = subprocess.run([sys.executable, "-m", "llm_assets", "evaluate", "no_such_folder", "--tasks", "t.jsonl",
                           "--batch-size", "0"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert errors == ["python -m llm_assets evaluate: error: argument --batch-size: 0 must be at least 1"], proc.stderr


def test_the_library_refuses_what_the_parser_refuses(tmp_path):
    from llm_assets.evaluation.cli import evaluate

    with pytest.raises(ValueError, match="max_items = -1 must be a whole number of at least 1"):
        evaluate(tmp_path / "never_read", [tmp_path / "t.jsonl"], max_items=-1)
    with pytest.raises(IsADirectoryError, match=f"--output {tmp_path} is a folder"):
        evaluate(tmp_path / "never_read", [tmp_path / "t.jsonl"], output=tmp_path)
