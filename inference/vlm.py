"""What every in-process vision-language describer shares (LLaVA on a GPU, SmolVLM on a CPU): a processor set up for
batched generation, the one-photo chat prompt, and greedy decoding of only the new tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def generation_processor(model_path: Path, name: str) -> Any:
    """The checkpoint's processor, its tokenizer padding on the left: generation appends on the right, so a batch of
    prompts of different lengths must end together."""
    from transformers import AutoProcessor

    if not model_path.is_dir():
        raise FileNotFoundError(f"{name} checkpoint directory {model_path} does not exist")
    processor = AutoProcessor.from_pretrained(model_path, local_files_only=True)
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return processor


def photo_prompt(processor: Any, prompt: str) -> str:
    """The chat-templated text of one user turn holding a photo and the prompt, ready for the assistant's answer."""
    content = [{"type": "image"}, {"type": "text", "text": prompt}]
    return str(processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True))


def generate_texts(
    model: Any, processor: Any, inputs: Any, max_new_tokens: int, min_new_tokens: int | None = None
) -> list[str]:
    """Greedy generation for a batch; only the new tokens are decoded, stripped."""
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens or None,
            do_sample=False,
            pad_token_id=processor.tokenizer.pad_token_id,
        )
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    return [text.strip() for text in processor.batch_decode(new_tokens, skip_special_tokens=True)]
