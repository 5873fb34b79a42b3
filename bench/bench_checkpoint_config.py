"""Peak memory of loading a checkpoint whose config.json was edited to a huge shape (the weights stay small).

    python bench/bench_checkpoint_config.py                    # vocab 400000, d_model 4096; before and after
    python bench/bench_checkpoint_config.py --before b8f1bba   # the commit measured as "before"
    python bench/bench_checkpoint_config.py --vocab 100000 --d-model 1024

Each load runs in its own child process; the table shows the child's peak RSS (ru_maxrss) and how it ended.
"before" is `llm_assets/modeling/checkpoint.py` of an earlier commit (read with `git show`, imported as a
temporary module); "after" is the working tree's. A loader that builds the model from config.json before
reading the weights allocates the edited shape; one that checks the safetensors header first refuses it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import importlib.util, resource, sys, time
spec = importlib.util.spec_from_file_location("loader_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
started = time.perf_counter()
try:
    module.load_checkpoint(sys.argv[2])
    outcome = "loaded"
except Exception as err:
    outcome = f"{type(err).__name__}: {' '.join(str(err).split())[:150]}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{peak:.0f}\t{time.perf_counter() - started:.2f}\t{outcome}")
"""


def small_checkpoint(folder: Path) -> Path:
    """A real 1-layer checkpoint (tokenizer trained here) of a few hundred KB."""
    import torch

    from llm_assets.modeling.checkpoint import save_checkpoint_folder
    from llm_assets.modeling.model import DecoderLM, ModelConfig
    from llm_assets.tokens.tokenizer import load_tokenizer, train_tokenizer

    train_tokenizer(["the quick brown fox jumps over the lazy dog"] * 4, 300, folder / "tok.json")
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=load_tokenizer(folder / "tok.json").get_vocab_size(), n_layer=1, n_head=2, n_kv_head=1,
                         d_model=64, d_ff=128, context=64)
    return save_checkpoint_folder(DecoderLM(config), config, folder / "tok.json", folder / "model")


def crafted(checkpoint: Path, vocab: int, d_model: int) -> Path:
    """`checkpoint` with config.json's vocab_size and d_model replaced (d_ff and heads scaled to stay valid)."""
    path = checkpoint / "config.json"
    config = json.loads(path.read_text())
    config["model"].update(vocab_size=vocab, d_model=d_model, d_ff=2 * d_model)
    path.write_text(json.dumps(config))
    return checkpoint


def measure(loader: Path, checkpoint: Path) -> tuple[float, str, float]:
    """(peak RSS in MB, outcome, seconds) of one child process loading `checkpoint` with `loader`."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(loader), str(checkpoint)], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return float("nan"), f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", float("nan")
    peak, seconds, outcome = proc.stdout.strip().splitlines()[-1].split("\t", 2)
    return float(peak), outcome, float(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="commit whose checkpoint loader is 'before'")
    parser.add_argument("--vocab", type=int, default=400_000)
    parser.add_argument("--d-model", type=int, default=4096)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = work / "checkpoint_before.py"
        old.write_text(subprocess.run(["git", "show", f"{args.before}:llm_assets/modeling/checkpoint.py"],
                                      cwd=REPO, capture_output=True, text=True, check=True).stdout)
        checkpoint = crafted(small_checkpoint(work), args.vocab, args.d_model)
        weights_mb = (checkpoint / "model.safetensors").stat().st_size / 1e6
        print(f"config.json: vocab_size {args.vocab}, d_model {args.d_model}; model.safetensors {weights_mb:.2f} MB")
        print(f"{'loader':<22} {'peak RSS MB':>12} {'seconds':>8}  outcome")
        rows = [("after (working tree)", REPO / "llm_assets/modeling/checkpoint.py"),
                (f"before ({args.before})", old)]
        peaks = {}
        for name, loader in rows:
            peak, outcome, seconds = measure(loader, checkpoint)
            peaks[name] = peak
            print(f"{name:<22} {peak:12.0f} {seconds:8.2f}  {outcome}")
        after, before = peaks[rows[0][0]], peaks[rows[1][0]]
        print(f"peak RSS before / after: {before / after:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
