"""Optional: CLIP's pretrained text encoder behind `TextConditioner`'s interface, from local files only.

The course works offline, so nothing is downloaded: `load_clip_text_encoder()` looks only in the
local Hugging Face cache (or a local folder) and, when CLIP is not there, says so in one sentence and
returns None. CLIP stays frozen: its features are fixed and only the U-Net learns to read them.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .text import TEXT_IDS, TEXT_MASK, check_captions, drop_context

CLIP_NAME = "openai/clip-vit-base-patch32"
OFFLINE_MESSAGE = ("CLIP's text encoder is not on this machine and the course works offline, "
                   "so this optional step is skipped.")


class ClipTextConditioner(nn.Module):
    """Captions → {"context": CLIP's last_hidden_state, "context_mask": its attention_mask}, with CLIP frozen."""

    def __init__(self, tokenizer, model: nn.Module):
        super().__init__()
        self.tokenizer, self.model = tokenizer, model.eval().requires_grad_(False)
        self.max_len = min(tokenizer.model_max_length, model.config.max_position_embeddings)  # 77 for CLIP

    @property
    def context_dim(self) -> int:
        return self.model.config.hidden_size

    def tokenize(self, captions: list[str], device=None) -> dict[str, Tensor]:
        """Token-level cond {"text_ids", "text_mask"}, padded to max_len like TextConditioner's."""
        batch = self.tokenizer(check_captions(captions), padding="max_length", max_length=self.max_len,
                               truncation=True, return_tensors="pt")
        device = self.model.device if device is None else device
        return {TEXT_IDS: batch["input_ids"].to(device), TEXT_MASK: batch["attention_mask"].to(device).bool()}

    @torch.no_grad()
    def encode_cond(self, cond):
        """A token-level cond → the U-Net's cond (other keys kept); any other cond unchanged."""
        if not isinstance(cond, dict) or TEXT_IDS not in cond:
            return cond
        rest = {k: v for k, v in cond.items() if k not in (TEXT_IDS, TEXT_MASK)}
        hidden = self.model(input_ids=cond[TEXT_IDS], attention_mask=cond[TEXT_MASK].long()).last_hidden_state
        return {**rest, "context": hidden, "context_mask": cond[TEXT_MASK].bool()}

    def forward(self, captions: list[str], device=None) -> dict[str, Tensor]:
        return self.encode_cond(self.tokenize(captions, device))

    def null_cond(self, batch_size: int, device=None) -> dict[str, Tensor]:
        """The empty prompt's cond for `batch_size` examples: the unconditional branch of guidance."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return self([""] * batch_size, device)

    def drop(self, cond: dict, mask: Tensor) -> dict:
        """The training loop's `drop_condition`: examples where `mask` is True get the empty prompt's encoding."""
        cond = self.encode_cond(cond)  # CLIP is frozen, so encoding first loses no gradient
        return drop_context(cond, self([""], cond["context"].device), mask)


def load_clip_text_encoder(name_or_path: str = CLIP_NAME, device=None) -> ClipTextConditioner | None:
    """CLIP's tokenizer and text model from local files only; None, after one sentence saying so, if absent."""
    found = _from_local_files(name_or_path)
    if found is None:
        print(OFFLINE_MESSAGE)
        return None
    conditioner = ClipTextConditioner(*found)
    return conditioner if device is None else conditioner.to(device)


def _from_local_files(name_or_path: str):
    """(tokenizer, model) from the local cache or folder, never the network; None if they are not there."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    folder = _local_folder(name_or_path)
    if folder is None:
        return None
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # keep a "Loading weights" bar out of notebook outputs
    try:  # the model first: a missing tokenizer "loads" as an empty vocabulary, without an error
        model = CLIPTextModel.from_pretrained(folder, local_files_only=True)
        tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError):  # not cached, or not a valid name or folder
        return None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return (tokenizer, model) if 2 < len(tokenizer) <= model.config.vocab_size else None


def _local_folder(name_or_path: str) -> str | None:
    """The folder holding `name_or_path`'s files: the path itself, or its snapshot in the local Hugging Face cache;
    None when neither exists. Loading from a folder keeps the Hub client from contacting the network at all (asked
    for a Hub name, it looks up things such as its user-agent registry even with local_files_only)."""
    import os

    if os.path.isdir(name_or_path):
        return name_or_path
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        config = try_to_load_from_cache(name_or_path, "config.json")  # reads the cache only
    except ValueError:  # not a Hub name either (a path that does not exist, say)
        return None
    return os.path.dirname(config) if isinstance(config, str) else None
