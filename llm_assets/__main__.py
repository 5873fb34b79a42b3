"""The command line: `python -m llm_assets COMMAND ...` (run with --help for the list).

A failing command prints one line, `llm_assets COMMAND: error: ...`, on stderr and exits with status 1;
`--debug` (or LLM_ASSETS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from llm_assets import profiles
from llm_assets.cli import DEBUG_ENV, debug_requested
from llm_assets.cli.arguments import non_negative_float, non_negative_int, positive_int, probability
from llm_assets.engine import ENGINE_ENV, ENGINES, RAY_ADDRESS_ENV


def _cmd_build(args) -> int:
    from llm_assets.cli.build import build
    from llm_assets.lake import lake_lock, lake_path

    # one build per lake and profile: a second would overwrite and prune the first one's parts
    lake = lake_path(profiles.data_dir()) / profiles.get_profile(args.profile).name
    with lake_lock(lake, "build"):
        return build(args.profile, args.select, args.crawl, args.seed, args.workers, args.engine)


def _out_folder(out: str) -> str:
    if Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder (it is made when missing)")
    return out


def _cmd_synth_crawl(args) -> int:
    import json

    from llm_assets.synthetic import generate_crawl

    profile = profiles.get_profile(args.profile)
    summary = generate_crawl(_out_folder(args.out), args.seed, profile.synthetic, profile_name=profile.name)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def is_synthetic_crawl_files(uris: list[str]) -> bool:
    """`uris` are the synthetic crawl: its folder, or files all in it (its tuned curation settings apply)."""
    from llm_assets.synthetic import is_synthetic_crawl

    folders = set()
    for uri in uris:
        if "://" in uri and not uri.startswith("file://"):
            return False
        path = Path(uri.removeprefix("file://"))
        folders.add(path if path.is_dir() else path.parent)
    return len(folders) == 1 and is_synthetic_crawl(folders.pop())


def _cmd_curate(args) -> int:
    import json

    from llm_assets.crawl import resolve_sources
    from llm_assets.curation.pipeline import curate

    uris = list(resolve_sources(args.warc).values())
    summary = curate(uris, _out_folder(args.out), profiles.get_profile(args.profile), args.benchmark or [],
                     reference_files=args.reference or [], synthetic=is_synthetic_crawl_files(uris),
                     engine=args.engine)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _notice(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _once(notice):
    """`notice` that says each distinct text once (chat replies would repeat the same note every turn)."""
    said: set[str] = set()

    def say(text: str) -> None:
        if text not in said:
            said.add(text)
            notice(text)

    return say


def _checkpoint(folder: str, asset: str = "base_checkpoint",
                kinds: str = "a checkpoint folder (model.safetensors, config.json, tokenizer.json)") -> str:
    """`folder`, after checking it is a folder; the error names it and where a build puts checkpoints."""
    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint folder {folder} does not exist; pass {kinds}, e.g. "
                                f"{profiles.data_dir()}/{profiles.get_profile().name}/{asset} after a build")
    if not path.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a checkpoint folder; pass {kinds}")
    return folder


def _cmd_generate(args) -> int:
    from llm_assets.modeling.checkpoint import load_checkpoint
    from llm_assets.modeling.generate import fit_new_tokens, generate
    from llm_assets.tokens.tokenizer import encode_text

    model, tokenizer = load_checkpoint(_checkpoint(args.checkpoint))
    prompt_tokens = len(encode_text(tokenizer, args.prompt))  # as generate encodes it: special-token text as text
    limit, note = fit_new_tokens(prompt_tokens, model.config.context, args.max_new_tokens)
    if note:
        _notice(note)
    sys.stdout.write(args.prompt)
    for piece in generate(model, tokenizer, args.prompt, max_new_tokens=limit,
                          temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _cmd_export_hf(args) -> int:
    from llm_assets.modeling.export import export_hf

    out = export_hf(_checkpoint(args.checkpoint), args.out)
    print(f"exported {args.checkpoint} to {out} (load with transformers.AutoModelForCausalLM.from_pretrained)")
    return 0


def _cmd_chat(args) -> int:
    from llm_assets.modeling.chat import answer_once, chat_loop
    from llm_assets.modeling.checkpoint import load_checkpoint

    loaded = load_checkpoint(_checkpoint(args.checkpoint, "assistant_checkpoint", "an assistant checkpoint folder "
                                         "(model.safetensors, config.json, tokenizer.json)"))
    sampling = {"max_new_tokens": args.max_new_tokens, "top_k": args.top_k, "top_p": args.top_p,
                "seed": args.seed, "notice": _once(_notice)}
    if args.prompt is not None:
        print(answer_once(loaded, args.prompt, temperature=args.temperature, **sampling))
        return 0
    chat_loop(loaded, temperature=args.temperature, **sampling)
    return 0


def _unescape(template: str | None) -> str | None:
    """A template typed in a shell: `\\n` and `\\t` stand for a newline and a tab."""
    return None if template is None else template.replace("\\n", "\n").replace("\\t", "\t")


def _cmd_evaluate(args) -> int:
    from llm_assets.evaluation.cli import evaluate

    evaluate(_checkpoint(args.checkpoint, kinds="our checkpoint folder or a Hugging Face export folder"), args.tasks,
             shots=args.shots, output=args.output, batch_size=args.batch_size, max_items=args.max_items,
             template=_unescape(args.template), log_samples=args.log_samples, seed=args.fewshot_seed,
             chat=args.chat, max_new_tokens=args.max_new_tokens)
    return 0


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-new-tokens", type=positive_int,
                   help="default: 128, or what the model's context leaves after the prompt")
    p.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=positive_int, help="sample among the k likeliest tokens (k >= 1)")
    p.add_argument("--top-p", type=probability, help="sample within this probability mass, in (0, 1]")
    p.add_argument("--seed", type=non_negative_int)


def _engine_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=ENGINES, help=f"where the global stages run (default: ${ENGINE_ENV} or "
                   f"'local'); 'ray' joins ${RAY_ADDRESS_ENV} or starts a local Ray cluster for the run")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help=f"on failure, show the traceback (also ${DEBUG_ENV}=1)")
    p = argparse.ArgumentParser(prog="python -m llm_assets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", parents=[common], help="materialize every asset (all partitions) in the Dagster instance")
    b.add_argument("--profile", choices=sorted(profiles.PROFILES), help=f"default: ${profiles.PROFILE_ENV} "
                   "or 'default'")
    b.add_argument("--select", help="Dagster asset selection, e.g. 'key:raw_crawl' or 'key:tokenizer+'")
    b.add_argument("--crawl", nargs="+", metavar="DIR_OR_GLOB",
                   help="WARC files to use instead of the synthetic crawl (paths, globs, URLs, listings)")
    b.add_argument("--seed", type=non_negative_int, help="seed of the synthetic crawl (default 0)")
    b.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                   help="crawl partitions run in parallel processes (default: up to 2)")
    _engine_arg(b)
    b.set_defaults(func=_cmd_build)

    s = sub.add_parser("synth-crawl", parents=[common], help="write the synthetic world's web crawl (WARC + ground truth)")
    s.add_argument("--seed", type=non_negative_int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--profile", choices=sorted(profiles.PROFILES))
    s.set_defaults(func=_cmd_synth_crawl)

    c = sub.add_parser("curate", parents=[common], help="run the curation chain without Dagster, Parquet per stage")
    c.add_argument("--warc", nargs="+", required=True, metavar="PATH_OR_GLOB")
    c.add_argument("--out", required=True)
    c.add_argument("--profile", choices=sorted(profiles.PROFILES))
    c.add_argument("--benchmark", nargs="*", metavar="FILE",
                   help="benchmark files (JSONL or MMLU CSV) whose items are removed from the mixture; "
                   "read before curation starts")
    c.add_argument("--reference", nargs="+", metavar="FILE_OR_DIR",
                   help="reference text for the quality model (Parquet `text`, JSONL `text`, or .txt with "
                   "blank-line separated documents; folders of them); read before curation starts")
    _engine_arg(c)
    c.set_defaults(func=_cmd_curate)

    g = sub.add_parser("generate", parents=[common], help="stream a completion from a checkpoint (KV cache)")
    g.add_argument("checkpoint", help="a checkpoint folder (model.safetensors, config.json, tokenizer.json)")
    g.add_argument("--prompt", required=True)
    _sampling_args(g)
    g.set_defaults(func=_cmd_generate)

    e = sub.add_parser("export-hf", parents=[common], help="write a Hugging Face folder (LlamaForCausalLM, safetensors)")
    e.add_argument("checkpoint")
    e.add_argument("out")
    e.set_defaults(func=_cmd_export_hf)

    ch = sub.add_parser("chat", parents=[common], help="interactive multi-turn chat with a checkpoint, streaming replies")
    ch.add_argument("checkpoint", help="an assistant checkpoint folder")
    ch.add_argument("--prompt", help="answer this one message and exit (for scripts)")
    _sampling_args(ch)
    ch.set_defaults(func=_cmd_chat)

    v = sub.add_parser("evaluate", parents=[common],
                       help="multiple-choice scores (lm-eval-harness semantics) and open-question answers of a checkpoint")
    v.add_argument("checkpoint", help="our checkpoint folder or an exported Hugging Face folder")
    v.add_argument("--tasks", nargs="+", required=True, metavar="FILE",
                   help="llm-foundry ICL JSONL {query, choices, gold}; ARC, HellaSwag or PIQA JSONL as "
                   "published; {question, choices, answer} JSONL; MMLU CSV (*_test.csv); open questions "
                   "{question, answers: [..]} JSONL, answered greedily; task = file stem")
    v.add_argument("--shots", type=non_negative_int, default=0,
                   help="solved examples per prompt, picked as lm-eval picks them: from the fewshot file "
                   "beside a task file (MMLU *_dev.csv, a *train* JSONL), else from the task itself")
    v.add_argument("--fewshot-seed", type=non_negative_int, default=1234, help="seed of the shot draw (lm-eval's default)")
    v.add_argument("--template",
                   help="how a query becomes a context, e.g. 'Question: {query}\\nAnswer:' (default: each "
                   "format's lm-eval rendering; ICL JSONL: the query as written + '\\nAnswer:')")
    v.add_argument("--log-samples", metavar="FILE",
                   help="write JSONL, one line per item: task, doc_id, context, loglikelihoods, pred, gold")
    v.add_argument("--chat", action="store_true",
                   help="prompt open questions with the chat template (assistant checkpoints); default: "
                   "'Question: …\\nAnswer:'")
    v.add_argument("--max-new-tokens", type=positive_int, default=32, help="longest greedy answer to an open question")
    v.add_argument("--output", help="write JSON {task: {acc, acc_norm, n}} ({exact_match, contains, n} for "
                   "open questions)")
    v.add_argument("--batch-size", type=positive_int, default=16)
    v.add_argument("--max-items", type=positive_int, help="score at most this many items per task")
    v.set_defaults(func=_cmd_evaluate)
    return p


def one_line(err: BaseException) -> str:
    """The error's message on one line, or its type when it has none; URLs in it are redacted (a crawl URL's
    password or presigned signature never reaches the terminal or a log)."""
    from llm_assets.crawl.sources import redact_text

    message = " ".join(str(err).split())
    if isinstance(err, KeyError | OSError) and not message:
        message = repr(err)
    return redact_text(message) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("llm_assets").setLevel(logging.INFO)
    args = parser().parse_args(argv)
    debug = getattr(args, "debug", False) or debug_requested()
    if debug:
        os.environ[DEBUG_ENV] = "1"  # build's runs and the training programs show their tracebacks too
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"llm_assets {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        print(f"llm_assets {args.command}: error: {one_line(err)} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
