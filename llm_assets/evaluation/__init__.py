"""Evaluation: benchmark loading, lm-eval-compatible multiple-choice scoring, perplexity and bits per byte,
prompt sensitivity, benchmark contamination, scores tables and the model card.

Modules: `tasks` (benchmark files), `adapter` (our checkpoint or a Hugging Face folder behind one
interface), `multiple_choice`, `perplexity`, `sensitivity`, `contamination`, `card`, `cli`.
"""
