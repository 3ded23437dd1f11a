"""Text conditioning: a word-level tokenizer and a small Transformer text encoder for the shapes captions.

    captions ──Tokenizer──▶ ids, mask (B, L) ──TextEncoder──▶ TextEncoding(tokens, pooled, mask)

- `tokens` (B, L, dim): one feature per token, zero at padding. What the U-Net's cross-attention
  reads: cond = {"context": tokens, "context_mask": mask} (`as_cond`).
- `pooled` (B, dim): one vector per caption, the mean of the real tokens' features, e.g. to add to
  the time embedding or to compare captions. The encoder is bidirectional, so every token has seen
  the whole caption; a mean weighs them all (CLIP pools its [EOS] token instead, the only one its
  causal mask lets see everything).
- `mask` (B, L) bool: True for real tokens ([BOS], the words, [EOS]), False for [PAD].

Tokenizer: lowercase, punctuation dropped, a few spellings a learner types mapped to the grammar's ("center" →
"centre", "an" → "a"), split on whitespace, unknown words → [UNK], padded to `max_len` (fixed shapes; 16 holds the
longest grammar caption, 14 tokens); longer captions are cut to their first max_len − 2 words + [EOS], as CLIP's
tokenizer does, rather than refused. Every caption that loses words (unknown or cut) is warned about, each time.

Training: the encoder is either first pretrained on the captions alone (`training.text_encoder.pretrain_text_encoder`,
with token targets) and then frozen — both shipped text models, pixel and latent — or it learns with the U-Net from the
diffusion loss (the recipes' default). Either way it sits inside the network the loop optimises:
`TextConditionedModel(unet, conditioner)`, whose batches carry
token ids (cond = {"text_ids", "text_mask"}, tensors the loop can move) and which encodes them itself.

Classifier-free guidance (Ho & Salimans 2022): the null condition is the encoding of "" = [BOS][EOS]
(never all padding, which would leave attention no key: NaN). Conditions are dropped BEFORE encoding
(`drop_captions` on strings, `conditioner.drop` on token ids: the loop's `drop_condition`), so the
null encoding is learned by the same gradients and never goes stale. Given an encoded cond, `drop`
recomputes the null encoding with the current weights and swaps rows, so gradients reach both.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.shapes import caption_words
from .embeddings import masked_mean

SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIAL_TOKENS))
TEXT_IDS, TEXT_MASK = "text_ids", "text_mask"  # keys of a token-level cond (see TextConditionedModel)


def _describe(x) -> str:
    """dtype and shape of a tensor (or the type of anything else), for error messages."""
    return f"{x.dtype} {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__


def check_captions(captions) -> list[str]:
    """`captions` as a list of str; TypeError naming the argument otherwise (a bare str is a mistake)."""
    if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
        hint = " (wrap a single caption in a list: [caption])" if isinstance(captions, str) else ""
        raise TypeError(f"captions must be a list of str, got {type(captions).__name__}{hint}")
    for c in captions:
        if not isinstance(c, str):
            raise TypeError(f"captions must be a list of str, but it contains {type(c).__name__} {c!r}")
    if not captions:
        raise ValueError("captions must hold at least one caption, got an empty list")
    return list(captions)


# --- tokenizer --------------------------------------------------------------------------------

class PromptWarning(UserWarning):
    """A prompt lost words on its way to token ids (unknown words, or cut at max_len)."""


warnings.filterwarnings("always", category=PromptWarning)  # every prompt that loses words says so, not only the first
#: spellings a learner types → the caption grammar's words (applied only where the grammar has the target word)
SPELLINGS = {"center": "centre", "centred": "centre", "centered": "centre", "middle": "centre", "an": "a",
             "color": "colour", "gray": "grey", "checkered": "checked", "stripy": "striped"}
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalise_caption(caption: str) -> list[str]:
    """The words of a caption as the tokenizer reads them: lowercase, punctuation removed, known spellings mapped
    ("A red, circle in the center." → a red circle in the centre). The captions the models were trained on come back
    word for word."""
    words = _PUNCTUATION.sub(" ", caption.lower()).split()
    known = set(caption_words())
    return [SPELLINGS[w] if w in SPELLINGS and SPELLINGS[w] in known else w for w in words]


class Tokenizer:
    """Word-level tokenizer: `tokenizer(captions) -> (ids (B, max_len) int64, mask (B, max_len) bool)`.

    Vocabulary: SPECIAL_TOKENS ([PAD]=0, [BOS], [EOS], [UNK]), then every word of the shapes
    caption grammar, sorted (`caption_words()`): the same ids on every machine.
    """

    def __init__(self, max_len: int = 16):
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
            raise ValueError(f"max_len must be an int >= 2 (room for [BOS] and [EOS]), got {max_len!r}")
        self.max_len = max_len
        self.vocab = SPECIAL_TOKENS + caption_words()
        self.ids = {w: i for i, w in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    vocab_size = property(__len__)

    def encode_one(self, caption: str) -> list[int]:
        """[BOS] word ids… [EOS] for one caption, unpadded (`normalise_caption` first)."""
        words = normalise_caption(caption)
        ids = [self.ids.get(w, UNK_ID) for w in words]
        lost = [w for w, i in zip(words, ids) if i == UNK_ID]
        if lost:
            warnings.warn(f"prompt {caption!r}: {', '.join(map(repr, lost))} not in the vocabulary, read as [UNK] "
                          f"(the words the models know: {' '.join(caption_words())})", PromptWarning, stacklevel=3)
        if len(ids) > self.max_len - 2:
            warnings.warn(f"prompt {caption!r}: {len(ids)} words, cut to the first {self.max_len - 2} (dropped: "
                          f"{' '.join(words[self.max_len - 2:])})", PromptWarning, stacklevel=3)
            ids = ids[: self.max_len - 2]
        return [BOS_ID, *ids, EOS_ID]

    def __call__(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        rows = [self.encode_one(c) for c in check_captions(captions)]
        ids = torch.tensor([r + [PAD_ID] * (self.max_len - len(r)) for r in rows], dtype=torch.long)
        ids = ids.reshape(len(rows), self.max_len)
        return ids, ids != PAD_ID  # [PAD] only ever follows [EOS]

    def decode(self, ids) -> str | list[str]:
        """The words between [BOS] and the first [EOS] or [PAD]: a str for ids (L,), a list for (B, L)."""
        ids = torch.as_tensor(ids)
        if ids.ndim not in (1, 2) or ids.is_floating_point() or ids.dtype == torch.bool:
            raise ValueError(f"ids must be integer token ids of shape (L,) or (B, L), got {_describe(ids)}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), got values from {ids.min()} to {ids.max()}")
        if ids.ndim == 2:
            return [self.decode(row) for row in ids]
        row = ids.tolist() + [EOS_ID]
        end = min(row.index(EOS_ID), row.index(PAD_ID) if PAD_ID in row else len(row))
        return " ".join(self.vocab[i] for i in row[:end] if i != BOS_ID)


# --- encoder ----------------------------------------------------------------------------------

@dataclass
class TextEncoderConfig:
    vocab_size: int = len(SPECIAL_TOKENS) + len(caption_words())  # token ids known: len(Tokenizer())
    max_len: int = 16  # longest token sequence, [BOS] and [EOS] included (the tokenizer's max_len)
    dim: int = 64  # width of every token feature (the U-Net's context_dim)
    layers: int = 2  # pre-LayerNorm Transformer encoder blocks
    heads: int = 4  # attention heads per block (dim must be divisible by heads)
    mlp_ratio: int = 4  # hidden width of each block's MLP, as a multiple of dim
    dropout: float = 0.0  # dropout on attention weights and MLP outputs, in training mode only

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "dim", "layers", "heads", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class TextEncoding(NamedTuple):
    """What the text encoder returns for a batch of captions."""
    tokens: Tensor  # (B, L, dim) per-token features, zero at padding: the cross-attention context
    pooled: Tensor  # (B, dim) mean of the real tokens' features: one vector per caption
    mask: Tensor  # (B, L) bool, True for real tokens


def as_cond(encoding: TextEncoding) -> dict[str, Tensor]:
    """The U-Net's cond dict: {"context": per-token features, "context_mask": True for real tokens}."""
    return {"context": encoding.tokens, "context_mask": encoding.mask}


class EncoderBlock(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)); padded keys get no attention.

    Written out rather than nn.TransformerEncoderLayer, whose eval-mode fast path (nested tensors) treats
    padded positions differently from training mode; here both modes compute the same thing.
    """

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        d, hidden = cfg.dim, cfg.mlp_ratio * cfg.dim
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.norm1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d), nn.Dropout(cfg.dropout))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Token + learned position embeddings, pre-LN Transformer blocks, final LayerNorm: (ids, mask) → TextEncoding."""

    def __init__(self, config: TextEncoderConfig | None = None, **overrides):
        super().__init__()
        cfg = replace(config, **overrides) if config is not None else TextEncoderConfig(**overrides)
        self.config = cfg
        self.token = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.position = nn.Parameter(torch.empty(cfg.max_len, cfg.dim))
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, ids: Tensor, mask: Tensor | None = None) -> TextEncoding:
        """mask: True for real tokens; None means ids != [PAD]."""
        mask = self._check(ids, mask)
        x = self.token(ids) + self.position[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        keep = mask[..., None].to(x.dtype)
        tokens = self.norm(x) * keep  # zero at padding, so nothing downstream can depend on it
        return TextEncoding(tokens, masked_mean(tokens, mask), mask)

    def _check(self, ids: Tensor, mask: Tensor | None) -> Tensor:
        v, n = self.config.vocab_size, self.config.max_len
        if not torch.is_tensor(ids) or ids.dtype != torch.long or ids.ndim != 2 or not 1 <= ids.shape[1] <= n:
            raise ValueError(f"ids must be an int64 tensor (B, L) with 1 <= L <= max_len={n}, got {_describe(ids)}")
        if ids.numel() and bool(((ids < 0) | (ids >= v)).any()):
            raise ValueError(f"ids must lie in [0, vocab_size={v}), got values from {ids.min()} to {ids.max()}")
        mask = ids != PAD_ID if mask is None else mask
        if not torch.is_tensor(mask) or mask.dtype != torch.bool or mask.shape != ids.shape:
            raise ValueError(f"mask must be a bool tensor shaped like ids {tuple(ids.shape)}, got {_describe(mask)}")
        if mask.numel() and not bool(mask.any(1).all()):
            raise ValueError("mask must mark at least one real token per caption (the empty prompt is [BOS][EOS])")
        return mask


# --- captions → U-Net cond, and dropping it for classifier-free guidance -----------------------

def drop_captions(captions: list[str], mask) -> list[str]:
    """The captions, with those where `mask` (bools, one per caption) is True replaced by the empty prompt ""."""
    captions = check_captions(captions)
    mask = torch.as_tensor(mask, dtype=torch.bool).reshape(-1).tolist()
    if len(mask) != len(captions):
        raise ValueError(f"mask must have one entry per caption ({len(captions)}), got {len(mask)}")
    return ["" if m else c for c, m in zip(captions, mask)]


def _check_mask(mask, batch_size: int, device) -> Tensor:
    if not torch.is_tensor(mask) or mask.dtype != torch.bool or mask.shape != (batch_size,):
        raise ValueError(f"mask must be a bool tensor of shape ({batch_size},), got {_describe(mask)}")
    return mask.to(device)


def drop_context(cond: dict, null: dict, mask: Tensor) -> dict:
    """`cond` with the examples where `mask` is True replaced by `null` (an encoded cond of batch 1 or B)."""
    ctx = cond["context"]
    if ctx.shape[1:] != null["context"].shape[1:]:
        raise ValueError(f"cond's context {tuple(ctx.shape)} must match the null one's "
                         f"{tuple(null['context'].shape)} except in batch size")
    m = _check_mask(mask, ctx.shape[0], ctx.device)
    return {**cond, "context": torch.where(m[:, None, None], null["context"], ctx),
            "context_mask": torch.where(m[:, None], null["context_mask"], cond["context_mask"])}


class TextConditioner(nn.Module):
    """Captions → U-Net cond: `conditioner(captions) -> {"context", "context_mask"}`; owns tokenizer and encoder."""

    def __init__(self, encoder: TextEncoder | None = None, tokenizer: Tokenizer | None = None):
        super().__init__()
        if tokenizer is None:
            tokenizer = Tokenizer(max_len=16 if encoder is None else encoder.config.max_len)
        if encoder is None:
            encoder = TextEncoder(vocab_size=len(tokenizer), max_len=tokenizer.max_len)
        self.tokenizer, self.encoder = tokenizer, encoder
        cfg = self.encoder.config
        if (cfg.vocab_size, cfg.max_len) != (len(self.tokenizer), self.tokenizer.max_len):
            raise ValueError(f"encoder config (vocab_size={cfg.vocab_size}, max_len={cfg.max_len}) must match the "
                             f"tokenizer (vocab_size={len(self.tokenizer)}, max_len={self.tokenizer.max_len})")

    @property
    def context_dim(self) -> int:
        return self.encoder.config.dim

    def tokenize(self, captions: list[str], device=None) -> dict[str, Tensor]:
        """Token-level cond {"text_ids", "text_mask"}: what a TextConditionedModel's batches carry."""
        ids, mask = self.tokenizer(captions)
        device = self.encoder.position.device if device is None else device
        return {TEXT_IDS: ids.to(device), TEXT_MASK: mask.to(device)}

    def encode(self, captions: list[str], device=None) -> TextEncoding:
        t = self.tokenize(captions, device)
        return self.encoder(t[TEXT_IDS], t[TEXT_MASK])

    def forward(self, captions: list[str], device=None) -> dict[str, Tensor]:
        return as_cond(self.encode(captions, device))

    def null_cond(self, batch_size: int, device=None) -> dict[str, Tensor]:
        """The empty prompt's cond for `batch_size` examples: the unconditional branch of guidance."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return self([""] * batch_size, device)

    def encode_cond(self, cond):
        """A token-level cond → the U-Net's cond (other keys, e.g. "label", kept); any other cond unchanged."""
        if not isinstance(cond, dict) or TEXT_IDS not in cond:
            return cond
        rest = {k: v for k, v in cond.items() if k not in (TEXT_IDS, TEXT_MASK)}
        return {**rest, **as_cond(self.encoder(cond[TEXT_IDS], cond.get(TEXT_MASK)))}

    def drop(self, cond: dict, mask: Tensor) -> dict:
        """The training loop's `drop_condition`: the examples where `mask` is True get the empty prompt.

        Token ids are replaced before encoding; an encoded cond gets the null encoding recomputed
        with the current weights. Other keys (e.g. "label") are left alone.
        """
        if isinstance(cond, dict) and TEXT_IDS in cond:
            ids = cond[TEXT_IDS]
            m = _check_mask(mask, ids.shape[0], ids.device)[:, None]
            null = self.tokenize([""], ids.device)
            real = cond.get(TEXT_MASK, ids != PAD_ID)
            return {**cond, TEXT_IDS: torch.where(m, null[TEXT_IDS], ids),
                    TEXT_MASK: torch.where(m, null[TEXT_MASK], real)}
        if isinstance(cond, dict) and "context" in cond:
            return drop_context(cond, self([""], cond["context"].device), mask)
        keys = sorted(cond) if isinstance(cond, dict) else type(cond).__name__
        raise ValueError(f"cond must be a dict with {TEXT_IDS!r} or 'context', got {keys}")


class TextConditionedModel(nn.Module):
    """A denoiser and its text conditioner as one model: `model(x_t, t, cond)`, cond holding token ids.

    Owning both puts the encoder's parameters in `model.parameters()`, so `train_diffusion(model, ...,
    drop_condition=model.drop)` trains and EMA-averages them with the U-Net. cond is token-level
    (`conditioner.tokenize(captions)`) or already encoded, e.g. `conditioner.null_cond(B)` for
    guidance (passed to `net` unchanged).
    """

    def __init__(self, net: nn.Module, conditioner: TextConditioner):
        super().__init__()
        self.net, self.conditioner = net, conditioner

    def drop(self, cond: dict, mask: Tensor) -> dict:
        return self.conditioner.drop(cond, mask)

    def forward(self, x: Tensor, t: Tensor, cond=None) -> Tensor:
        return self.net(x, t, self.conditioner.encode_cond(cond))
