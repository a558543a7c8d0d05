"""Building and loading transformers' PI0: small from-scratch configs, a byte-level tokenizer that
needs no download, and the local-directory (HF layout: config.json + model.safetensors +
tokenizer files) save / load that real pi0 checkpoints go through.

A real checkpoint ships its own tokenizer (PaliGemma's SentencePiece, 257k entries); a model built
here from scratch gets `byte_tokenizer()`: the 256 bytes plus four special tokens, so any
instruction tokenizes offline and the embedding table stays small.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PI0Config, PI0ForConditionalGeneration, PreTrainedTokenizerBase

    from pirl_core.config import PolicyConfig

IMAGE_TOKEN = "<image>"
_SPECIALS = ("<pad>", "<bos>", "<eos>", IMAGE_TOKEN)


def byte_tokenizer() -> PreTrainedTokenizerBase:
    """A fast tokenizer over raw UTF-8 bytes (ids 0-255) + <pad> <bos> <eos> <image> (256-259)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda ch: ord(ch))
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({tok: len(alphabet) + i for i, tok in enumerate(_SPECIALS)})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                  eos_token="<eos>",
                                  extra_special_tokens={"image_token": IMAGE_TOKEN})
    return tok


def image_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    ids = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if not isinstance(ids, int) or ids == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer has no {IMAGE_TOKEN!r} token")
    return ids


def small_pi0_config(cfg: PolicyConfig, action_dim: int, state_dim: int, chunk_size: int,
                     image_size: int, tokenizer: PreTrainedTokenizerBase) -> PI0Config:
    """A pi0 with pi0's layout (PaliGemma prefix, Gemma expert of the same depth sharing the
    attention head geometry, single K/V head) at the widths of `cfg`."""
    from transformers import PI0Config

    if image_size % cfg.patch_size:
        raise ValueError(f"policy.patch_size {cfg.patch_size} must divide the image size "
                         f"{image_size}")
    head_dim = cfg.hidden_dim // cfg.num_heads
    common = {"num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
              "num_key_value_heads": 1, "head_dim": head_dim}
    vocab = len(tokenizer)
    return PI0Config(
        vlm_config={
            "model_type": "paligemma",
            "text_config": {"model_type": "gemma", "hidden_size": cfg.hidden_dim,
                            "intermediate_size": 4 * cfg.hidden_dim, "vocab_size": vocab,
                            **common},
            "vision_config": {"model_type": "siglip_vision_model", "hidden_size": cfg.hidden_dim,
                              "intermediate_size": 4 * cfg.hidden_dim,
                              "patch_size": cfg.patch_size, "image_size": image_size,
                              "num_hidden_layers": cfg.num_layers,
                              "num_attention_heads": cfg.num_heads, "vision_use_head": False},
            "projection_dim": cfg.hidden_dim,
            "image_token_id": image_token_id(tokenizer),
        },
        dit_config={"model_type": "gemma", "hidden_size": cfg.expert_hidden_dim,
                    "intermediate_size": 4 * cfg.expert_hidden_dim, **common},
        chunk_size=chunk_size, max_state_dim=state_dim, max_action_dim=action_dim,
    )


def build_pi0(cfg: PolicyConfig, action_dim: int, state_dim: int, chunk_size: int,
              image_size: int) -> tuple[PI0ForConditionalGeneration, PreTrainedTokenizerBase]:
    """A randomly initialised small pi0 and its byte tokenizer."""
    from transformers import PI0ForConditionalGeneration

    tokenizer = byte_tokenizer()
    config = small_pi0_config(cfg, action_dim, state_dim, chunk_size, image_size, tokenizer)
    return PI0ForConditionalGeneration(config), tokenizer


def load_pi0(path: str | Path, dtype: torch.dtype = torch.float32
             ) -> tuple[PI0ForConditionalGeneration, PreTrainedTokenizerBase]:
    """Weights (safetensors) + config + tokenizer from a local directory in the HF layout."""
    from transformers import AutoTokenizer, PI0ForConditionalGeneration

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"policy.checkpoint {str(path)!r} has no config.json "
                                "(expected a HF-layout pi0 directory)")
    model = PI0ForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer


def save_pi0(model: PI0ForConditionalGeneration, tokenizer: PreTrainedTokenizerBase,
             path: str | Path) -> Path:
    """Write the HF layout `load_pi0` reads."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def published_pi0_config(max_action_dim: int, max_state_dim: int, chunk_size: int,
                         tokenizer: PreTrainedTokenizerBase, image_size: int = 224,
                         **extra) -> PI0Config:
    """pi0's published geometry (PaliGemma 3B + 300M Gemma expert, SigLIP; transformers'
    PI0Config defaults) with the given padded dims, chunk, image side and any other PI0Config
    fields in `extra` (e.g. a checkpoint's time-embedding periods)."""
    from transformers import PI0Config

    base = PI0Config()
    vlm = base.vlm_config.to_dict()
    vlm["vision_config"]["image_size"] = image_size
    vlm["image_token_id"] = image_token_id(tokenizer)
    return PI0Config(vlm_config=vlm, dit_config=base.dit_config.to_dict(), chunk_size=chunk_size,
                     max_action_dim=max_action_dim, max_state_dim=max_state_dim, **extra)


def full_pi0_config(action_dim: int, state_dim: int, chunk_size: int,
                    tokenizer: PreTrainedTokenizerBase) -> PI0Config:
    """pi0's published size (SigLIP at 224 px, 32-dim padded action and state), with pirl's
    chunk size; random weights, for the benchmarks."""
    return published_pi0_config(max(32, action_dim), max(32, state_dim), chunk_size, tokenizer)
