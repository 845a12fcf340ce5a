"""Build a tiny random-weight vision-language model (Idefics3) on disk, for tests and demos.

`model-garden create-demo-model --vision DIR` writes it. Like the text demo model (demo_model.py)
it answers gibberish: it exists so the whole image path (our image pipeline, vLLM's multimodal
processing, the vision tower, image tokens in usage) runs where no weights can be downloaded.

Idefics3 because it is the vision-language architecture vLLM's CPU build runs here without
torchvision (Qwen2-VL, LLaVA, Gemma 3, ... import it); transformers falls back to its PIL image
processor. The shapes are the smallest vLLM's CPU attention accepts (head_dim 64):
- vision tower (SigLIP-style): hidden 128, 2 layers, 2 heads, image size 112, patch 14;
- connector: pixel shuffle with scale factor 2, so an image is (112/14)^2 / 2^2 = 16 `<image>`
  tokens, plus `<fake_token_around_image><global-img>` before and `<fake_token_around_image>` after
  (19 prompt tokens per image, whatever its size: image splitting is off);
- text model (Llama): hidden 128, 2 layers, 2 heads, 1 KV head.
"""

from __future__ import annotations

import json
from pathlib import Path

from model_garden.demo_model import train_tokenizer

IMAGE_SIZE = 112
PATCH_SIZE = 14
SCALE_FACTOR = 2
# <image> tokens per image: ((IMAGE_SIZE // PATCH_SIZE) ** 2) // SCALE_FACTOR**2.
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2
# What one image adds to the prompt: the <image> run and the three tokens around it.
PROMPT_TOKENS_PER_IMAGE = IMAGE_SEQ_LEN + 3

IMAGE_TOKEN = "<image>"
FAKE_IMAGE_TOKEN = "<fake_token_around_image>"
GLOBAL_IMAGE_TOKEN = "<global-img>"
END_OF_UTTERANCE = "<end_of_utterance>"
# The processor looks these up even with image splitting off.
_TILE_TOKENS = tuple(f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7))
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    IMAGE_TOKEN,
    FAKE_IMAGE_TOKEN,
    GLOBAL_IMAGE_TOKEN,
    END_OF_UTTERANCE,
    *_TILE_TOKENS,
)

# Idefics3's own template (SmolVLM's), also accepting plain-string content.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}"
    "{% else %}{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

MARKER_FILE = "MODEL_GARDEN_DEMO_VISION_MODEL.md"


def create_demo_vision_model(
    directory: str | Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 128,
    num_layers: int = 2,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a random-weight Idefics3 model (weights, tokenizer, processor) to `directory`.

    Deterministic for a given seed. About 3 MB on disk.
    """
    # Heavy imports stay local: the CLI imports this module lazily, and only for --vision.
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        LlamaConfig,
        PreTrainedTokenizerFast,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(vocab_size, SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token=END_OF_UTTERANCE,
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=max_position_embeddings,
    )

    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=fast,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(target)
    # vLLM reads the template from the tokenizer's files too.
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(target)

    torch.manual_seed(seed)
    head_dim = 64
    vocab = len(fast)
    text_config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=hidden_size // head_dim,
        num_key_value_heads=1,
        head_dim=head_dim,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=fast.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=fast.convert_tokens_to_ids(END_OF_UTTERANCE),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=False,
        dtype="float32",
    )
    config = Idefics3Config(
        vision_config={
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": num_layers,
            "num_attention_heads": hidden_size // head_dim,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "num_channels": 3,
        },
        text_config=text_config.to_dict(),
        scale_factor=SCALE_FACTOR,
        image_token_id=fast.convert_tokens_to_ids(IMAGE_TOKEN),
        tie_word_embeddings=False,
        pad_token_id=text_config.pad_token_id,
    )
    config.dtype = torch.float32
    model = Idefics3ForConditionalGeneration(config)
    model.save_pretrained(target, safe_serialization=True)
    # generation_config.json would carry sampling defaults vLLM applies silently; keep it neutral.
    (target / "generation_config.json").write_text(
        json.dumps({"eos_token_id": text_config.eos_token_id, "pad_token_id": text_config.pad_token_id})
        + "\n"
    )
    (target / MARKER_FILE).write_text(
        "# Model Garden smoke-test vision model\n\n"
        "A random-weight Idefics3, made by `model-garden create-demo-model --vision`. It answers\n"
        f"gibberish. Each image is {PROMPT_TOKENS_PER_IMAGE} prompt tokens ({IMAGE_SIZE}x{IMAGE_SIZE}, "
        "no splitting).\n"
    )
    return target
