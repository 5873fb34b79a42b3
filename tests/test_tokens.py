"""Tokenizer, chat format, binary token shards and their checks, on small generated prose."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llm_assets.lake import file_sha256
from llm_assets.tokens import checks, shards, special
from llm_assets.tokens.tokenizer import (
    load_tokenizer,
    measure_compression,
    mixture_texts,
    to_transformers,
    train_tokenizer,
)

PASSAGE = ("the city of Varenholm lies on the river Ost and was founded in 1821 by merchants who traded "
         "salt timber and wool ; its university teaches law medicine and astronomy , and the mayor is "
         "elected every four years . people say the winters are long but the summers are bright")
WORDS = PASSAGE.split(" ")
TRICKY = [
    "  two leading spaces, trailing tab\t",
    "line one\r\nline two\n\n\nthree newlines",
    "Ünïcödé: naïve café, 日本語のテキスト, emoji 😀👍🏽, math ∑∫√",
    "don't it's we're — “quotes” and ‘apostrophes’",
    "a literal <|endoftext|> and <|user|> inside a web page",
    "\x00control\x07chars\x1b[0m",
]


def prose(n_docs: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18))).capitalize() + "."
                     for _ in range(rng.randint(1, 12))]
        docs.append(" ".join(sentences))
    return docs


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    stats = train_tokenizer(prose(600) + TRICKY, vocab_size=400, out_path=path)
    return path, stats


def write_mixture(path: Path, texts: list[str], splits: list[str], ids: list[str] | None = None) -> Path:
    ids = ids or [f"<urn:uuid:{i:08d}>" for i in range(len(texts))]
    pl.DataFrame({"text": texts, "split": splits, "warc_record_id": ids,
                  "url": [f"https://example.org/{i}" for i in range(len(texts))], "host": "example.org",
                  "copy": [0] * len(texts)}).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def shard_folder(tmp_path_factory, trained) -> tuple[Path, list[str], list[str]]:
    tokenizer_path, _ = trained
    folder = tmp_path_factory.mktemp("shards")
    texts = prose(400, seed=1) + TRICKY
    splits = ["validation" if i % 10 == 0 else "train" for i in range(len(texts))]
    half = len(texts) // 2
    files = [write_mixture(folder / "mix-0.parquet", texts[:half], splits[:half],
                           [f"<urn:uuid:{i:08d}>" for i in range(half)]),
             write_mixture(folder / "mix-1.parquet", texts[half:], splits[half:],
                           [f"<urn:uuid:{i:08d}>" for i in range(half, len(texts))])]
    # small shards and batches so documents straddle shard boundaries and batches interleave splits
    shards.write_shards(files, tokenizer_path, folder / "out", shard_tokens=1000, batch_documents=37)
    return folder / "out", texts, splits


# ---------------------------------------------------------------------------------------------- chat


MESSAGES = [{"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Where is Varenholm?"},
            {"role": "assistant", "content": "On the river Ost."},
            {"role": "user", "content": "Founded?"},
            {"role": "assistant", "content": "In 1821."}]


def test_render_chat_format_and_generation_prompt():
    text = special.render_chat(MESSAGES[1:3], add_generation_prompt=True)
    assert text == ("<|user|>\nWhere is Varenholm?<|end|>\n<|assistant|>\nOn the river Ost.<|end|>\n"
                    "<|assistant|>\n")


def test_assistant_spans_cover_exactly_the_assistant_turns():
    text = special.render_chat(MESSAGES)
    assert [text[a:b] for a, b in special.assistant_spans(MESSAGES, include_end=False)] == \
        ["On the river Ost.", "In 1821."]
    assert [text[a:b] for a, b in special.assistant_spans(MESSAGES)] == \
        ["On the river Ost.<|end|>", "In 1821.<|end|>"]


def test_render_chat_rejects_unknown_role():
    with pytest.raises(ValueError, match="chat message 0: unknown role 'tool'"):
        special.render_chat([{"role": "tool", "content": "x"}])


def test_hf_chat_template_matches_render_chat(trained):
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(trained[0]))
    hf.chat_template = special.CHAT_TEMPLATE
    for prompt in (False, True):
        assert hf.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=prompt) == \
            special.render_chat(MESSAGES, add_generation_prompt=prompt)


# ---------------------------------------------------------------------------------------------- tokenizer


def test_train_tokenizer_stats_and_special_ids(trained):
    _, stats = trained
    assert stats["special_tokens"] == {t: i for i, t in enumerate(special.SPECIAL_TOKENS)}
    assert 256 + len(special.SPECIAL_TOKENS) < stats["vocab_size"] <= 400
    assert stats["merges"] == stats["vocab_size"] - 256 - len(special.SPECIAL_TOKENS)
    assert stats["training_seconds"] >= 0 and stats["documents"] == 606
    assert any("'the'" in m or "' the'" in m for m in stats["sample_merges"])


def test_round_trip_is_exact_on_tricky_text(trained):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(trained[0]))
    for text in TRICKY + prose(20, seed=5):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_transformers_loads_tokenizer_json_unchanged(trained):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer

    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(trained[0]))
    ours = Tokenizer.from_file(str(trained[0]))
    for text in TRICKY:
        ids = hf.encode(text)
        assert ids == ours.encode(text).ids  # no BOS/EOS added, no prefix space
        assert hf.decode(ids) == text
    assert hf.convert_tokens_to_ids("<|endoftext|>") == 0


def test_to_transformers_saves_and_reloads_with_specials_and_template(trained, tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = to_transformers(trained[0])
    assert (hf.eos_token_id, hf.pad_token_id) == (0, special.SPECIAL_TOKENS.index("<|pad|>"))
    hf.save_pretrained(tmp_path / "hf")
    reloaded = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert reloaded.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True) == \
        special.render_chat(MESSAGES, add_generation_prompt=True)
    ids = reloaded.apply_chat_template(MESSAGES[1:3], tokenize=True, return_dict=False)
    assert reloaded.convert_ids_to_tokens(ids[0]) == "<|user|>"
    assert ids.count(reloaded.convert_tokens_to_ids("<|end|>")) == 2
    assert reloaded.decode(reloaded.encode(TRICKY[2])) == TRICKY[2]


def test_train_tokenizer_rejects_tiny_vocab(tmp_path):
    with pytest.raises(ValueError, match="vocab_size 100 is below 262"):
        train_tokenizer(["abc"], vocab_size=100, out_path=tmp_path / "t.json")


def test_measure_compression_beats_bytes(trained):
    stats = measure_compression(trained[0], prose(50, seed=9))
    assert stats["bytes_per_token"] > 2.0  # merges learned on this prose compress it
    assert stats["chars_per_token"] == pytest.approx(stats["characters"] / stats["tokens"])


def test_mixture_texts_streams_one_split(tmp_path):
    path = write_mixture(tmp_path / "m.parquet", ["a", "b", "", "c"], ["train", "validation", "train", "train"])
    assert list(mixture_texts([path])) == ["a", "c"]
    assert list(mixture_texts([path], split="validation")) == ["b"]


# ---------------------------------------------------------------------------------------------- shards


def documents_from_shards(folder: Path, split: str) -> list[np.ndarray]:
    """Reassemble each document's tokens (EOT included) from the shards using only the .idx files."""
    manifest = shards.load_manifest(folder)
    entries = manifest["splits"][split]
    tokens = np.concatenate([np.asarray(shards.read_tokens(folder / e["file"])) for e in entries])
    bases = np.cumsum([0] + [e["tokens"] for e in entries])
    starts = np.concatenate([shards.read_index(folder / e["file"]).astype(np.int64) + base
                             for e, base in zip(entries, bases, strict=False)])
    return np.split(tokens, starts[1:])


def test_shards_hold_every_document_with_eot_in_order(trained, shard_folder):
    folder, texts, splits = shard_folder
    manifest = shards.load_manifest(folder)
    tokenizer = load_tokenizer(trained[0])
    eot = manifest["eot_id"]
    for split in shards.SPLITS:
        expected = [t for t, s in zip(texts, splits, strict=True) if s == split]
        docs = documents_from_shards(folder, split)
        assert len(docs) == len(expected) == manifest["documents"][split]
        for text, doc in zip(expected, docs, strict=True):
            assert doc[-1] == eot and eot not in doc[:-1]
            assert doc[:-1].tolist() == tokenizer.encode(text, add_special_tokens=False).ids
            assert tokenizer.decode(doc[:-1].tolist(), skip_special_tokens=False) == text


def test_shards_are_fixed_size_and_documents_straddle(trained, shard_folder):
    folder, _, _ = shard_folder
    manifest = shards.load_manifest(folder)
    train = manifest["splits"]["train"]
    assert len(train) > 3 and all(e["tokens"] == 1000 for e in train[:-1]) and 0 < train[-1]["tokens"] <= 1000
    assert [e["file"] for e in train] == [f"train-{i:05d}.bin" for i in range(len(train))]
    # a shard whose first document starts after offset 0 holds the tail of a document from the previous shard
    assert any(shards.read_index(folder / e["file"])[0] > 0 for e in train[1:])
    header = shards.read_header(folder / train[0]["file"])
    assert header == {"magic": "LLMATOK1", "version": 1, "dtype": "uint16", "dtype_code": 2,
                      "token_count": 1000, "doc_count": train[0]["documents"]}
    raw = (folder / train[0]["file"]).read_bytes()
    assert raw[:8] == b"LLMATOK1" and raw[32:64] == b"\0" * 32 and len(raw) == 64 + 2 * 1000
    assert isinstance(shards.read_tokens(folder / train[0]["file"]), np.memmap)
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["tokenizer_sha256"] == file_sha256(trained[0])
    assert on_disk["format"] == "llmatok" and on_disk["dtype"] == "uint16" and on_disk["eot_id"] == 0
    assert not list(folder.glob(".*.tmp"))


def test_literal_special_token_text_does_not_inject_a_boundary(trained, tmp_path):
    text = "before <|endoftext|> after"
    mix = write_mixture(tmp_path / "m.parquet", [text, "plain"], ["train", "validation"])
    manifest = shards.write_shards([mix], trained[0], tmp_path / "out", shard_tokens=4096, batch_documents=8)
    tokens = shards.read_tokens(tmp_path / "out" / manifest["splits"]["train"][0]["file"])
    assert int(np.count_nonzero(tokens == manifest["eot_id"])) == 1 and tokens[-1] == manifest["eot_id"]


def test_write_shards_counts_skipped_rows_and_rejects_missing_columns(trained, tmp_path):
    mix = write_mixture(tmp_path / "m.parquet", ["one", "", None, "two", "three"],
                        ["train", "train", "validation", "test", "validation"])
    manifest = shards.write_shards([mix], trained[0], tmp_path / "out", shard_tokens=64, batch_documents=2)
    assert manifest["skipped"] == {"empty_text": 2, "unknown_split": 1}
    assert manifest["documents"] == {"train": 1, "validation": 1}
    pl.DataFrame({"text": ["x"], "split": ["train"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet: missing column\(s\) warc_record_id"):
        shards.write_shards([tmp_path / "bad.parquet"], trained[0], tmp_path / "out2", 64, 2)


def test_failed_rewrite_leaves_no_manifest_and_no_temp_files(trained, tmp_path):
    good = write_mixture(tmp_path / "good.parquet", prose(40), ["train"] * 36 + ["validation"] * 4)
    shards.write_shards([good], trained[0], tmp_path / "out", shard_tokens=300, batch_documents=8)
    pl.DataFrame({"text": ["x"], "split": ["train"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="missing column"):
        shards.write_shards([good, tmp_path / "bad.parquet"], trained[0], tmp_path / "out", 300, 8)
    with pytest.raises(shards.ShardError, match="no manifest"):
        shards.load_manifest(tmp_path / "out")
    assert not list((tmp_path / "out").glob(".*tmp"))
    assert not checks.check_shard_integrity(tmp_path / "out")[0]


def test_rewrite_removes_stale_shards(trained, tmp_path):
    mix = write_mixture(tmp_path / "m.parquet", prose(60), ["train"] * 59 + ["validation"])
    shards.write_shards([mix], trained[0], tmp_path / "out", shard_tokens=200, batch_documents=16)
    many = len(list((tmp_path / "out").glob("train-*.bin")))
    manifest = shards.write_shards([mix], trained[0], tmp_path / "out", shard_tokens=100_000, batch_documents=16)
    assert many > 1 and sorted(p.name for p in (tmp_path / "out").glob("train-*")) == ["train-00000.bin",
                                                                                      "train-00000.idx",
                                                                                      "train-documents.parquet"]
    assert manifest["splits"]["train"][0]["tokens"] == manifest["tokens"]["train"]


def test_uint32_shards_round_trip(tmp_path):
    writer = shards.SplitWriter(tmp_path, "train", shard_tokens=5, dtype=shards.dtype_for_vocab(100_000))
    tokens = np.array([70_000, 99_999, 0, 5, 0, 65_536, 1, 2, 0], dtype=np.uint32)
    starts = writer.append(tokens, np.array([3, 2, 4]))
    entries = writer.close()
    assert starts.tolist() == [0, 3, 5]
    assert [shards.read_header(tmp_path / e["file"])["dtype"] for e in entries] == ["uint32", "uint32"]
    got = np.concatenate([shards.read_tokens(tmp_path / e["file"]) for e in entries])
    assert got.tolist() == tokens.tolist()
    assert [shards.read_index(tmp_path / e["file"]).tolist() for e in entries] == [[0, 3], [0]]


def test_document_longer_than_a_shard_leaves_empty_indexes(tmp_path):
    writer = shards.SplitWriter(tmp_path, "train", shard_tokens=5, dtype=shards.dtype_for_vocab(300))
    writer.append(np.array([*range(1, 12), 0, 7, 0], dtype=np.uint16), np.array([12, 2]))
    entries = writer.close()
    assert [(e["tokens"], e["documents"]) for e in entries] == [(5, 1), (5, 0), (4, 1)]
    assert [shards.read_index(tmp_path / e["file"]).tolist() for e in entries] == [[0], [], [2]]
    for entry in entries:
        shards.verify_shard(tmp_path / entry["file"], entry["sha256"])


def test_verify_shard_names_file_and_fault(shard_folder, tmp_path):
    folder, _, _ = shard_folder
    entry = shards.load_manifest(folder)["splits"]["train"][0]
    shards.verify_shard(folder / entry["file"], entry["sha256"])
    corrupt = tmp_path / entry["file"]
    shutil.copy(folder / entry["file"], corrupt)
    shutil.copy(shards.index_path(folder / entry["file"]), shards.index_path(corrupt))
    data = bytearray(corrupt.read_bytes())
    data[100] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(shards.ShardError, match=rf"{entry['file']}: sha256 .* does not match"):
        shards.verify_shard(corrupt, entry["sha256"])
    corrupt.write_bytes(bytes(data[:-2]))
    with pytest.raises(shards.ShardError, match="truncated or padded"):
        shards.verify_shard(corrupt)
    corrupt.write_bytes(b"NOTTOKEN" + bytes(data[8:]))
    with pytest.raises(shards.ShardError, match="bad magic"):
        shards.read_header(corrupt)


# ---------------------------------------------------------------------------------------------- checks


def test_checks_pass_on_good_shards(trained, shard_folder):
    folder, texts, _ = shard_folder
    assert checks.check_round_trip(trained[0], texts, sample_size=50)[0]
    passed, details = checks.check_shard_integrity(folder, trained[0])
    assert passed and details["shards_checked"] > 4, details
    passed, details = checks.check_token_range(folder)
    assert passed and details["max_token"] < details["vocab_size"], details
    assert checks.check_splits_nonempty(folder)[0]
    passed, details = checks.check_no_validation_leak(folder)
    assert passed and details["validation_documents"] == 41, details


def test_checks_fail_on_bad_shards(trained, shard_folder, tmp_path):
    folder, _, _ = shard_folder
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["vocab_size"] = 50  # pretend the vocabulary is smaller than the ids in the shards
    manifest["splits"]["train"][1]["sha256"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(manifest))
    passed, details = checks.check_token_range(bad)
    assert not passed and ">= vocab_size 50" in details["errors"][0]
    passed, details = checks.check_shard_integrity(bad)
    assert not passed and "train-00001.bin: sha256" in details["errors"][0]
    (bad / "validation-00000.idx").write_bytes(b"")
    passed, details = checks.check_no_validation_leak(bad)
    assert not passed and "validation .idx" in details["errors"][0]


def test_round_trip_check_reports_failures(tmp_path, trained):
    # a tokenizer with a lowercasing normalizer cannot reproduce capitals
    from tokenizers import Tokenizer, normalizers

    lossy = Tokenizer.from_file(str(trained[0]))
    lossy.normalizer = normalizers.Lowercase()
    lossy.save(str(tmp_path / "lossy.json"))
    passed, details = checks.check_round_trip(tmp_path / "lossy.json", ["Capital Letters", "lower"])
    assert not passed and details["failures"] == 1 and details["examples"][0]["text"] == "Capital Letters"


def test_leak_check_finds_shared_ids_and_shared_texts(trained, tmp_path):
    texts = prose(30, seed=3)
    ids = [f"<urn:uuid:{i}>" for i in range(30)]
    splits = ["train"] * 27 + ["validation"] * 3
    texts[28] = texts[4]  # same text, different record id
    ids[29] = ids[7]  # same record id in both splits
    mix = write_mixture(tmp_path / "m.parquet", texts, splits, ids)
    shards.write_shards([mix], trained[0], tmp_path / "out", shard_tokens=500, batch_documents=8)
    passed, details = checks.check_no_validation_leak(tmp_path / "out")
    assert not passed
    assert details["shared_record_ids"] == 1 and details["shared_texts"] == 1
    assert sorted(details["examples"]) == sorted([ids[28], ids[29]])


def test_splits_nonempty_fails_without_validation(trained, tmp_path):
    mix = write_mixture(tmp_path / "m.parquet", prose(5), ["train"] * 5)
    shards.write_shards([mix], trained[0], tmp_path / "out", shard_tokens=500, batch_documents=8)
    passed, details = checks.check_splits_nonempty(tmp_path / "out")
    assert not passed and details["tokens"]["validation"] == 0 and details["tokens"]["train"] > 0


# ---------------------------------------------------------------------------------------------- synthetic crawl


def test_tokenizer_and_shards_on_synthetic_crawl_text(tmp_path):
    """End to end on the project's own smoke crawl: page text -> tokenizer -> shards -> every check passes."""
    synthetic = pytest.importorskip("llm_assets.synthetic")
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str

    from llm_assets.crawl import read_warc
    from llm_assets.profiles import get_profile

    profile = get_profile("smoke")
    synthetic.generate_crawl(tmp_path / "crawl", seed=3, size=profile.synthetic, profile_name="smoke")
    frames = [read_warc(str(p)).records for p in sorted((tmp_path / "crawl").glob("crawl-*.warc.gz"))]
    pages = pl.concat(frames).filter(pl.col("content_type") == "text/html")
    pages = pages.with_columns(pl.Series("text", [
        extract_plain_text(bytes_to_str(body, charset or "utf-8"), main_content=True)
        for body, charset in zip(pages["body"].to_list(), pages["charset"].to_list(), strict=True)]))
    # the crawl plants exact duplicates; without this stand-in for dedup the leak check rightly fails
    pages = pages.unique("text", keep="first", maintain_order=True)
    texts = pages["text"].to_list()
    assert len(texts) > 50
    splits = ["validation" if i % 10 == 3 else "train" for i in range(len(texts))]
    mix = write_mixture(tmp_path / "mix.parquet", texts, splits, pages["warc_record_id"].to_list())
    stats = train_tokenizer(mixture_texts([mix]), profile.tokenizer.vocab_size, tmp_path / "tokenizer.json")
    assert stats["vocab_size"] == profile.tokenizer.vocab_size
    assert measure_compression(tmp_path / "tokenizer.json", texts)["chars_per_token"] > 2.5
    manifest = shards.write_shards([mix], tmp_path / "tokenizer.json", tmp_path / "shards",
                                   profile.tokenizer.shard_tokens, profile.tokenizer.batch_documents)
    assert manifest["documents"]["train"] + manifest["documents"]["validation"] + \
        sum(manifest["skipped"].values()) == len(texts)
    out = tmp_path / "shards"
    for passed, details in (checks.check_round_trip(tmp_path / "tokenizer.json", texts),
                            checks.check_shard_integrity(out, tmp_path / "tokenizer.json"),
                            checks.check_token_range(out), checks.check_splits_nonempty(out),
                            checks.check_no_validation_leak(out)):
        assert passed, details


def test_shards_do_not_depend_on_how_the_mixture_is_split_into_files(trained, tmp_path):
    """Parts with fetch times (one per WARC file) merge into one document order: the shards are the same
    whether the mixture comes as one file or as parts, as long as each part is in fetch order."""
    from datetime import UTC, datetime, timedelta

    tokenizer_path, _ = trained
    texts = prose(90, seed=5)
    rng = random.Random(5)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame({
        "text": texts, "split": ["validation" if i % 9 == 0 else "train" for i in range(len(texts))],
        "warc_record_id": [f"<urn:uuid:{i:08d}>" for i in range(len(texts))],
        "copy": [0] * len(texts),
        "fetch_time": [start + timedelta(seconds=rng.randrange(50)) for _ in texts],  # ties on purpose
    }).sort("fetch_time", "warc_record_id", "copy")
    frame.write_parquet(tmp_path / "one.parquet")
    shards.write_shards([tmp_path / "one.parquet"], tokenizer_path, tmp_path / "a", 500, 16)
    parts = []
    for k in range(3):
        path = tmp_path / f"part-{k}.parquet"
        frame.filter(pl.int_range(pl.len()) % 3 == (k * 2) % 3).write_parquet(path)
        parts.append(path)
    shards.write_shards(parts, tokenizer_path, tmp_path / "b", 500, 16)
    bins = sorted(p.name for p in (tmp_path / "a").glob("*.bin"))
    assert bins and bins == sorted(p.name for p in (tmp_path / "b").glob("*.bin"))
    for name in bins:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
