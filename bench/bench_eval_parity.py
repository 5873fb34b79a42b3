"""Parity and speed of our multiple-choice scorer against lm-eval-harness (`--model hf`) on the same items.

Builds a random checkpoint of ours and exports it with `export_hf` (or takes any Hugging Face folder),
writes the items to a local JSONL plus a local lm-eval task YAML (`dataset_path: json`, no hub access),
runs `lm_eval.simple_evaluate` and ours (on the export, and on our own folder), and prints `acc`/`acc_norm`,
the largest per-choice log-likelihood difference and the wall-time ratios. Exits non-zero on a mismatch.

    python bench/bench_eval_parity.py [--checkpoint HF_FOLDER | --source native|llama] [--items 200]
        [--batch-size 16] [--d-model 128 --layers 4 --vocab 1024] [--threads 1] [--repeats 3]

Needs the bench extra `lm-eval`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ["river", "stone", "capital", "city", "founded", "museum", "bridge", "tower", "harbor", "island", "mountain", "valley", "forest", "painter", "poet", "engineer", "chemist", "physicist", "novel", "symphony", "treaty", "empire", "republic", "railway", "university", "library", "cathedral", "market", "festival", "winter", "summer", "northern", "southern", "ancient", "modern"]


def make_items(n: int, seed: int) -> list[dict]:
    """Questions with 2-5 choices of 1-4 words, so continuations span one and several tokens."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        query = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize() + "?"
        choices = list(dict.fromkeys(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
                                     for _ in range(rng.randint(2, 5))))
        if len(choices) < 2:
            choices.append("none of these")
        items.append({"query": query, "choices": choices, "gold": rng.randrange(len(choices))})
    return items


TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{query}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def run_lm_eval(checkpoint: Path, task_dir: Path, name: str, batch_size: int, repeats: int) -> dict:
    """lm-eval end to end (model load included), then again on the loaded model (scoring only)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    def evaluate(model, model_args):
        results = lm_eval.simple_evaluate(
            model=model, model_args=model_args, tasks=[name],
            task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
            batch_size=batch_size, device="cpu", bootstrap_iters=0, log_samples=True)
        metrics = results["results"][name]
        lls = {sample["doc_id"]: [resp[0] for resp in sample["filtered_resps"]]
               for sample in results["samples"][name]}
        return {"acc": metrics["acc,none"], "acc_norm": metrics["acc_norm,none"], "lls": lls}

    started = time.perf_counter()
    out = evaluate("hf", f"pretrained={checkpoint},dtype=float32")
    out["end_to_end_s"] = time.perf_counter() - started
    lm = HFLM(pretrained=str(checkpoint), dtype="float32", batch_size=batch_size, device="cpu")
    out["scoring_s"] = best_of(repeats, lambda: evaluate(lm, None))
    return out


def best_of(repeats: int, fn) -> float:
    """Fastest of `repeats` timed calls (the machine is shared, so the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def run_ours(checkpoint: Path, data: Path, batch_size: int, repeats: int) -> dict:
    """Ours end to end (model load included), then again on the loaded model (scoring only)."""
    from llm_assets.evaluation.adapter import load_scoring_model
    from llm_assets.evaluation.multiple_choice import evaluate_multiple_choice
    from llm_assets.evaluation.tasks import load_suite

    started = time.perf_counter()
    model = load_scoring_model(checkpoint)
    result = evaluate_multiple_choice(model, load_suite([data]), batch_size=batch_size)
    end_to_end = time.perf_counter() - started
    scoring = best_of(repeats, lambda: evaluate_multiple_choice(model, load_suite([data]), batch_size=batch_size))
    score = result.scores[data.stem]
    lls = dict(enumerate(result.items["loglikelihoods"].to_list()))
    return {"acc": score["acc"], "acc_norm": score["acc_norm"], "lls": lls,
            "end_to_end_s": end_to_end, "scoring_s": scoring}


def write_native_checkpoint(tmp_dir: Path, texts: list[str], args) -> Path:
    """A random model of ours (wide init, so choices differ clearly) with a locally trained tokenizer."""
    from llm_assets.evaluation.tiny_model import train_byte_bpe
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
    parser.add_argument("--checkpoint", type=Path, help="Hugging Face folder (default: build one, see --source)")
    parser.add_argument("--source", choices=("native", "llama"), default="native",
                        help="native: a random model of ours exported with export_hf (ours also scores the "
                             "native folder); llama: a random transformers Llama")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (1 keeps timings stable on a shared machine)")
    parser.add_argument("--repeats", type=int, default=3, help="timed scoring runs per side (fastest counts)")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1024)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    items = make_items(args.items, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        checkpoint, native = args.checkpoint, None
        texts = [item["query"] + " " + " ".join(item["choices"]) for item in items] * 3
        if checkpoint is None and args.source == "llama":
            from llm_assets.evaluation.tiny_model import write_tiny_hf_checkpoint

            checkpoint = write_tiny_hf_checkpoint(tmp_dir / "tiny-llama", texts, vocab_size=args.vocab,
                                                  d_model=args.d_model, n_layer=args.layers, n_head=4,
                                                  context=512)
        elif checkpoint is None:
            native = write_native_checkpoint(tmp_dir, texts, args)
            from llm_assets.modeling.export import export_hf

            checkpoint = export_hf(native, tmp_dir / "exported")
        warm_up(checkpoint)
        name = "parity_mc"
        data = tmp_dir / f"{name}.jsonl"
        data.write_text("".join(json.dumps(item) + "\n" for item in items))
        task_dir = tmp_dir / "tasks"
        task_dir.mkdir()
        (task_dir / f"{name}.yaml").write_text(TASK_YAML.format(name=name, data=data))

        theirs = run_lm_eval(checkpoint, task_dir, name, args.batch_size, args.repeats)
        ours = run_ours(checkpoint, data, args.batch_size, args.repeats)
        runs = [("lm-eval", theirs), ("ours", ours)]
        if native is not None:
            runs.append(("ours-native", run_ours(native, data, args.batch_size, args.repeats)))

    n_requests = sum(len(item["choices"]) for item in items)
    print(f"\n{len(items)} items, {n_requests} choices, batch size {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'':12} {'acc':>8} {'acc_norm':>9} {'end-to-end s':>13} {'scoring s (best of ' + str(args.repeats) + ')':>22}")
    for label, run in runs:
        print(f"{label:12} {run['acc']:8.4f} {run['acc_norm']:9.4f} {run['end_to_end_s']:13.2f} "
              f"{run['scoring_s']:22.2f}")
    same = True
    for label, run in runs[1:]:
        max_diff = max(abs(a - b) for doc, values in theirs["lls"].items()
                       for a, b in zip(values, run["lls"][doc], strict=True))
        exact = theirs["acc"] == run["acc"] and theirs["acc_norm"] == run["acc_norm"]
        same &= exact
        print(f"{label}: speed ratio lm-eval/{label} end to end {theirs['end_to_end_s'] / run['end_to_end_s']:.2f}x, "
              f"scoring a loaded model {theirs['scoring_s'] / run['scoring_s']:.2f}x; max |log-likelihood "
              f"difference| per choice {max_diff:.2e}; parity {'EXACT' if exact else 'MISMATCH'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
