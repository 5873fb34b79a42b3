"""Parity and speed of `evaluate` against lm-eval-harness (`--model hf`), per benchmark format, at 0 and 5 shots.

Builds a random checkpoint of ours and exports it with `export_hf` (or takes any Hugging Face folder), writes
the same random items in every supported format (ICL JSONL, ARC, HellaSwag, PIQA, MMLU CSV with its dev
split) plus lm-eval task YAMLs that mirror the official tasks and read the files locally (no hub access;
`llm_assets.evaluation.lm_eval_mirror`), runs both sides and prints per format and shot count: acc and
acc_norm of both, whether every context string and per-item decision is identical, the largest per-choice
log-likelihood difference, and the wall time of each side (model load included). Exits non-zero on a
mismatch.

    python bench/bench_eval_parity.py [--checkpoint HF_FOLDER] [--items 200] [--shots 0 5]
        [--batch-size 16] [--d-model 128 --layers 4 --vocab 1024] [--threads 1]

Needs the bench extra (`lm-eval`, `accelerate`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' tiny tokenizer trainer
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_lm_eval(checkpoint: Path, task_dir: Path, names: list[str], shots: int, batch_size: int) -> tuple[dict, float]:
    """lm-eval end to end (model load included) on all tasks: (results, seconds)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    started = time.perf_counter()
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={checkpoint},dtype=float32", tasks=names,
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False), num_fewshot=shots,
        batch_size=batch_size, device="cpu", bootstrap_iters=0, log_samples=True)
    return results, time.perf_counter() - started


def run_ours(checkpoint: Path, files: list[Path], shots: int, batch_size: int):
    """`evaluate`'s path end to end (model load, files, shots, scoring): (result, seconds)."""
    from llm_assets.evaluation.adapter import load_scoring_model
    from llm_assets.evaluation.multiple_choice import PromptFormat, evaluate_multiple_choice
    from llm_assets.evaluation.tasks import load_fewshot, load_suite

    started = time.perf_counter()
    model = load_scoring_model(checkpoint)
    result = evaluate_multiple_choice(model, load_suite(files), PromptFormat(shots=shots), batch_size=batch_size,
                                      fewshot=load_fewshot(files))
    return result, time.perf_counter() - started


def compare(parity_tasks, theirs: dict, ours) -> list[dict]:
    """Per format: both sides' acc/acc_norm, identical contexts and decisions, largest |loglikelihood diff|."""
    from llm_assets.evaluation.lm_eval_mirror import lm_eval_samples

    rows = []
    for task in parity_tasks:
        samples = lm_eval_samples(theirs, task.lm_eval_task)
        items = ours.items.filter(ours.items["task"] == task.our_task).to_dicts()
        same_context = all(set(samples[r["doc_id"]]["contexts"]) == {r["context"]} for r in items)
        same_decisions = all((r["acc"], r["acc_norm"]) == (samples[r["doc_id"]]["acc"], samples[r["doc_id"]]["acc_norm"])
                             for r in items)
        max_diff = max(abs(a - b) for r in items
                       for a, b in zip(r["loglikelihoods"], samples[r["doc_id"]]["loglikelihoods"], strict=True))
        metrics = theirs["results"][task.lm_eval_task]
        rows.append({"format": task.format, "lm_eval": metrics["acc,none"], "lm_eval_norm": metrics["acc_norm,none"],
                     "ours": ours.scores[task.our_task]["acc"], "ours_norm": ours.scores[task.our_task]["acc_norm"],
                     "contexts": same_context, "decisions": same_decisions and len(items) == len(samples),
                     "max_diff": max_diff})
    return rows


def write_native_checkpoint(tmp_dir: Path, texts: list[str], args) -> Path:
    """A random model of ours (wide init, so choices differ clearly) with a locally trained tokenizer."""
    from tiny_model import train_byte_bpe

    from llm_assets.modeling.checkpoint import save_checkpoint_folder
    from llm_assets.modeling.model import DecoderLM, ModelConfig

    tokenizer = train_byte_bpe(texts, args.vocab)
    tokenizer_path = tmp_dir / "tokenizer.json"
    tokenizer.save(str(tokenizer_path))
    config = ModelConfig(vocab_size=tokenizer.get_vocab_size(), n_layer=args.layers, n_head=4, n_kv_head=2,
                         d_model=args.d_model, d_ff=args.d_model * 8 // 3 // 2 * 2, context=512, init_std=0.2)
    return save_checkpoint_folder(DecoderLM(config), config, tokenizer_path, tmp_dir / "native")


def warm_up(checkpoint: Path) -> None:
    """One forward pass before any timing, so neither side pays torch's first-call setup."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        AutoModelForCausalLM.from_pretrained(checkpoint)(torch.zeros((4, 64), dtype=torch.long))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="Hugging Face folder (default: a random model of ours, "
                        "exported with export_hf)")
    parser.add_argument("--items", type=int, default=200, help="items per format")
    parser.add_argument("--train", type=int, default=50, help="fewshot-split items per format that has one")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 5])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (1 keeps timings stable on a shared machine)")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1024)
    args = parser.parse_args()

    import torch

    from llm_assets.evaluation.lm_eval_mirror import write_parity_tasks

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_dir / "datasets_cache"))
        parity_tasks, yaml_dir = write_parity_tasks(tmp_dir / "tasks", n_items=args.items, n_train=args.train,
                                                    seed=args.seed)
        files = [f for task in parity_tasks for f in task.files]
        checkpoint = args.checkpoint
        if checkpoint is None:
            texts = [line for f in files for line in f.read_text().splitlines()]
            from llm_assets.modeling.export import export_hf

            checkpoint = export_hf(write_native_checkpoint(tmp_dir, texts, args), tmp_dir / "exported")
        warm_up(checkpoint)
        print(f"{args.items} items per format, batch size {args.batch_size}, torch threads {torch.get_num_threads()}")
        print(f"{'format':10} {'shots':>5} {'acc lm-eval':>11} {'acc ours':>9} {'norm lm-eval':>12} {'norm ours':>9} "
              f"{'contexts':>8} {'decisions':>9} {'max |dll|':>9}")
        for shots in args.shots:
            theirs, their_s = run_lm_eval(checkpoint, yaml_dir, [t.lm_eval_task for t in parity_tasks], shots,
                                          args.batch_size)
            ours, our_s = run_ours(checkpoint, files, shots, args.batch_size)
            for row in compare(parity_tasks, theirs, ours):
                same = row["contexts"] and row["decisions"] and row["lm_eval"] == row["ours"] \
                    and row["lm_eval_norm"] == row["ours_norm"]
                ok &= same
                print(f"{row['format']:10} {shots:5d} {row['lm_eval']:11.4f} {row['ours']:9.4f} "
                      f"{row['lm_eval_norm']:12.4f} {row['ours_norm']:9.4f} {'same' if row['contexts'] else 'DIFF':>8} "
                      f"{'same' if row['decisions'] else 'DIFF':>9} {row['max_diff']:9.2e}")
            print(f"{'all':10} {shots:5d} end to end: lm-eval {their_s:.2f}s, ours {our_s:.2f}s, "
                  f"speed-up {their_s / our_s:.2f}x")
    print("parity " + ("EXACT" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
