"""Tiny checkpoints built offline in seconds: a text Llama and a Llava vision-language model.

Both use a byte-level BPE tokenizer trained in code on a small corpus (digits, braces, quotes and
the words of the GeneralPoints prompts), random weights under a fixed torch seed, and
``save_pretrained`` into one folder, so gpbench's backends load them through their real loading
code. The models are untrained: their text is gibberish, but deterministic. The tests, the
benchmarks and the demo use them; they need the ``hf`` extra.

>>> # build_tiny_llama(Path("ckpt"))  # ~1.6 MB, a few seconds
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>\n"
    "{% endfor %}{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)
VISION_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}</s>\n"
    "{% endfor %}{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]


def _corpus(splits: tuple[str, ...] = ("id",)) -> list[str]:
    from gpbench.tasks.registry import get_task

    lines = ["0123456789 {}[]()'\",:=+-*/ user assistant system\n" * 4]
    for task_id in ("gp-l", "gp-vl"):
        task = get_task(task_id)
        for split in splits:
            for index in range(12):
                inst = task.instance(split, 42, index)
                content = inst.messages[0]["content"]
                text = content if isinstance(content, str) else content[-1]["text"]
                lines.append(text + task.reference_answer(inst))
    return lines


def _tokenizer(
    extra_special: list[str], vocab_size: int, template: str, splits: tuple[str, ...] = ("id",)
) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + extra_special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(splits), trainer)
    extra = {"image_token": extra_special[0]} if extra_special else {}
    wrapper: Any = PreTrainedTokenizerFast  # untyped constructor
    return wrapper(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        chat_template=template,
        extra_special_tokens=extra,
    )


def _text_config(vocab_size: int, hidden_size: int = 128, layers: int = 2) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=hidden_size // 64,
        num_key_value_heads=hidden_size // 64,
        head_dim=64,  # vLLM's CPU attention rejects head_dim 16: keep the model usable there
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def build_tiny_llama(
    folder: Path,
    hidden_size: int = 128,
    layers: int = 2,
    vocabulary_splits: tuple[str, ...] = ("id",),
) -> Path:
    """A random Llama (by default 2 layers, hidden 128, 2 heads of 64) with a BPE tokenizer and
    chat template.

    ``vocabulary_splits``: the gp-l/gp-vl splits whose prompts and reference answers train the
    BPE (``id`` alone never shows 11, 12 or 13, which the tokenizer then spells digit by digit:
    a model meant to compute under J/Q/K = 11/12/13 adds ``ood-rule``).
    """
    import torch
    from transformers import LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer([], 512, TEXT_TEMPLATE, vocabulary_splits)
    torch.manual_seed(0)
    model = LlamaForCausalLM(_text_config(len(tokenizer), hidden_size, layers))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_vlm(folder: Path) -> Path:
    """A random Llava: a 1-layer CLIP vision tower on 32x32 images and the tiny Llama as LM."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(["<image>"], 512, VISION_TEMPLATE)
    # The PIL image processor: the default one needs torchvision, whose PyPI builds need CUDA.
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor_class: Any = LlavaProcessor  # untyped constructor
    processor = processor_class(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=VISION_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,  # CLIP's class token
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_text_config(len(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
