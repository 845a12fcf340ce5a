"""Build a tiny random-weight chat model on disk, for smoke tests and the README's quick start.

Weights cannot be downloaded on every machine (CI has no model hub), so this makes a real
Hugging Face model directory locally: a 2-layer Llama with a byte-level BPE tokenizer trained on a
small built-in text and a ChatML chat template. vLLM loads and serves it like any other model.
Its answers are gibberish: it exists to exercise every code path, not to be useful. Real users pass
a Hugging Face id or a local directory of a trained model.

The shapes are the smallest that vLLM's CPU attention accepts (head_dim 64; 16 is rejected).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# A little English for the tokenizer to learn merges from; any text tokenizes anyway
# (byte-level BPE has no unknown token).
_TRAINING_TEXT = """
Model Garden serves large language models with vLLM on Kubernetes. Hello! How are you today?
The quick brown fox jumps over the lazy dog. A tiny model answers questions about images and text.
What is the capital of France? Paris is the capital of France. Tell me a story about a garden.
Once upon a time there was a small garden where every flower could talk and every tree could sing.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Punctuation: , . ; : ! ? ( ) [ ] { } " ' - _ / \\ @ # $ % & *
The system prompt says: you are a helpful assistant. The user asks, the assistant answers.
Kubernetes operators reconcile deployments, services and status. GPUs run tensor parallel shards.
"""

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# ChatML, the template most chat models use; vLLM applies it for /v1/chat/completions.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

MARKER_FILE = "MODEL_GARDEN_DEMO_MODEL.md"


def train_tokenizer(vocab_size: int, special_tokens: Sequence[str]) -> Any:
    """A byte-level BPE tokenizer (`tokenizers.Tokenizer`) trained on the built-in text: any input
    tokenizes (no unknown token), and the special tokens get their own ids first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([_TRAINING_TEXT] * 4, trainer=trainer)
    return tokenizer


def create_demo_model(
    directory: str | Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 128,
    num_layers: int = 2,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a random-weight Llama chat model to `directory` and return its path.

    Deterministic for a given seed: the same arguments give the same weights.
    """
    # Heavy imports stay local: the CLI imports this module for every command.
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(vocab_size, SPECIAL_TOKENS)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=max_position_embeddings,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(target)

    torch.manual_seed(seed)
    head_dim = 64
    config = LlamaConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=hidden_size // head_dim,
        num_key_value_heads=1,
        head_dim=head_dim,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=None,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(target, safe_serialization=True)
    # generation_config.json would carry sampling defaults vLLM applies silently; keep it neutral.
    (target / "generation_config.json").write_text(
        json.dumps({"eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id}) + "\n"
    )
    (target / MARKER_FILE).write_text(
        "# Model Garden smoke-test model\n\n"
        "Random weights, made by `model-garden create-demo-model`. It answers gibberish.\n"
        "It exists to exercise the serving path without downloading weights.\n"
    )
    return target


def is_demo_model(directory: str | Path) -> bool:
    return (Path(directory) / MARKER_FILE).is_file()
