"""Tokenizer training and binary token shards.

- `special`: special tokens, chat template, `render_chat`, `assistant_spans`.
- `encoding`: the one place that loads `tokenizer.json` and encodes text (special-token text as text,
  only chat markers as special ids): `load_tokenizer`, `encode_text`, `encode_chat`.
- `tokenizer`: `train_tokenizer`, `measure_compression`, `mixture_texts`, `to_transformers`.
- `shards`: the shard format, `write_shards`, `read_tokens`, `read_header`, `verify_shard`, `load_manifest`.
- `checks`: asset-check functions returning `(passed, details)`.
"""
