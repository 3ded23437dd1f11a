"""The course's U-Net: a time-conditioned denoiser for small images, with hooks for labels and text.

`UNet(config)(x_t, t, cond)` follows the course's model contract. `cond` is None, a LongTensor of
class labels, or a dict with any of: "label" (B,), "context" (B, L, context_dim) token features for
cross-attention, and "context_mask" (B, L) True where a token is real (not padding).

Layout (defaults): 32×32 → 16×16 → 8×8, one residual block per level on the way down and up,
self-attention only at the lowest resolution, where it is cheap. Every residual block receives
the time (+ label) embedding. Chosen by measurement for CPU speed (appendix a1, docs/benchmarks.md).
With `attention_position`, attention layers also add an embedding of each pixel's (x, y) to its token, so that
cross-attention can tell pixels apart; with `context_pooling`, the mean of the context's real tokens (the text encoder's
pooled output) is added, through one linear layer, to the time embedding every residual block receives, as Stable
Diffusion XL adds its pooled text embedding. The shipped text model has both (lesson 07; appendix a2 measures what
they and the loss weighting change).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .embeddings import TimeEmbedding, masked_mean


@dataclass
class UNetConfig:
    in_channels: int = 3  # image channels in
    out_channels: int = 3  # prediction channels out (same as in for ε/x₀/v prediction)
    image_size: int = 32  # height = width of the input
    patch_size: int = 1  # fold p×p pixel patches into channels first (p=2: the U-Net runs at 16×16, ~4× cheaper)
    channels: tuple[int, ...] = (32, 64, 128)  # width at each resolution level (each level halves H and W)
    blocks_per_level: int = 1  # residual blocks per level on the way down (the way up has one more)
    attention_levels: tuple[int, ...] | None = None  # levels with self-attention (0 = full res; None = the lowest)
    attention_head_dim: int = 32  # channels per attention head
    mid_attention: bool = True  # self-attention in the middle block at the lowest resolution
    attention_position: bool = False  # add each pixel's (x, y) position to the tokens entering attention
    time_dim: int = 128  # width of the time embedding
    num_classes: int | None = None  # class-conditional: an embedding of this many labels + 1 "no label" id
    context_dim: int | None = None  # text-conditional: width of the token features to cross-attend to
    context_pooling: bool = False  # text-conditional: also add the context's mean over real tokens to the time embedding
    groups: int = 8  # GroupNorm groups
    dropout: float = 0.0  # dropout inside residual blocks

    def __post_init__(self):
        self.channels = tuple(self.channels)
        n = len(self.channels)
        self.attention_levels = (n - 1,) if self.attention_levels is None else tuple(self.attention_levels)
        if n == 0 or any(c % self.groups for c in self.channels):
            raise ValueError(f"channels must be non-empty and divisible by groups={self.groups}, got {self.channels}")
        if any(not 0 <= a < n for a in self.attention_levels):
            raise ValueError(f"attention_levels must index levels 0..{n - 1}, got {self.attention_levels}")
        if self.context_pooling and self.context_dim is None:
            raise ValueError("context_pooling needs a context: set context_dim")
        if self.image_size % (self.patch_size * 2 ** (n - 1)):
            raise ValueError(f"image_size {self.image_size} must be divisible by patch_size·2^{n - 1} "
                             f"= {self.patch_size * 2 ** (n - 1)} for {n} levels")

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, add the embedding (as scale and shift), again, plus a skip connection."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # start each block as the identity: stable early training
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


POSITION_FREQUENCIES = 4  # sin and cos of x and y at 1, 2, 4 and 8 half-turns across the image: 16 features


def grid_features(h: int, w: int, device=None, dtype=None) -> Tensor:
    """(h·w, 16) Fourier features of each pixel centre's (x, y), both in [-1, 1] across the feature map, row by row.

    The same point of the image gets the same features at every resolution: "top left" means the same thing at 8×8
    and at 4×4.
    """
    ys, xs = ((torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n * 2 - 1 for n in (h, w))
    yx = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(h * w, 2, 1)  # (HW, 2, 1)
    angles = yx * (torch.pi / 2 * 2.0 ** torch.arange(POSITION_FREQUENCIES, device=device))  # (HW, 2, F)
    return torch.cat([angles.sin(), angles.cos()], -1).reshape(h * w, -1).to(dtype or torch.float32)


class Attention(nn.Module):
    """Multi-head attention over the pixels of a feature map: self-attention, or cross-attention to `context`.

    With `position=True` a learned projection of each pixel's coordinates (`grid_features`) is added to its token
    before attention, as a ViT adds its position embedding: without it a pixel's query says what is there but not
    where it is, so a caption's "in the top left" has nothing to attend from. The projection starts at zero (no effect).
    """

    def __init__(self, channels: int, head_dim: int, groups: int, context_dim: int | None = None,
                 position: bool = False):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        if channels % self.heads:
            raise ValueError(f"channels ({channels}) must be divisible by the number of heads ({self.heads})")
        self.is_cross = context_dim is not None  # cross-attention to a token sequence, or self-attention
        self.norm = nn.GroupNorm(groups, channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(context_dim or channels, 2 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.position = nn.Linear(4 * POSITION_FREQUENCIES, channels, bias=False) if position else None
        if self.position is not None:
            nn.init.zeros_(self.position.weight)
        self.last_weights: Tensor | None = None  # set when `keep_weights` is True (attention maps for notebooks)
        self.keep_weights = False

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        if self.position is not None:
            tokens = tokens + self.position(grid_features(h, w, x.device, tokens.dtype))
        src = tokens if context is None else context
        q = self.q(tokens).view(b, -1, self.heads, c // self.heads).transpose(1, 2)
        k, v = (t.view(b, -1, self.heads, c // self.heads).transpose(1, 2) for t in self.kv(src).chunk(2, dim=-1))
        attn_mask = None if mask is None else mask[:, None, None, :].to(torch.bool)
        if self.keep_weights:
            scores = q @ k.transpose(-1, -2) / (c // self.heads) ** 0.5
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            weights = scores.softmax(-1)
            self.last_weights = weights.detach()
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(b, h * w, c)
        return x + self.out(out).transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """One resolution level: residual blocks, each optionally followed by self- and cross-attention."""

    def __init__(self, cins: list[int], cout: int, cfg: UNetConfig, attention: bool):
        super().__init__()
        self.res = nn.ModuleList(ResBlock(c, cout, cfg.time_dim, cfg.groups, cfg.dropout) for c in cins)
        pos = cfg.attention_position
        self.self_attn = nn.ModuleList(
            Attention(cout, cfg.attention_head_dim, cfg.groups, position=pos) if attention else nn.Identity()
            for _ in cins
        )
        cross = attention and cfg.context_dim is not None
        self.cross_attn = nn.ModuleList(
            Attention(cout, cfg.attention_head_dim, cfg.groups, cfg.context_dim, position=pos) if cross
            else nn.Identity() for _ in cins
        )

    def block(self, i: int, h: Tensor, emb: Tensor, context, mask) -> Tensor:
        h = self.res[i](h, emb)
        if isinstance(self.self_attn[i], Attention):
            h = self.self_attn[i](h)
        if isinstance(self.cross_attn[i], Attention) and context is not None:
            h = self.cross_attn[i](h, context, mask)
        return h


class UNet(nn.Module):
    """U-Net ε/x₀/v-predictor: `net(x_t, t, cond=None) -> (B, out_channels, H, W)`."""

    def __init__(self, config: UNetConfig | None = None, **overrides):
        super().__init__()
        cfg = replace(config, **overrides) if config is not None else UNetConfig(**overrides)
        self.config = cfg
        ch = cfg.channels
        self.time = TimeEmbedding(cfg.time_dim)
        self.label = nn.Embedding(cfg.num_classes + 1, cfg.time_dim) if cfg.num_classes else None
        if self.label is not None:  # zero: a label starts as "no effect", so conditioning can be added to a trained model
            nn.init.zeros_(self.label.weight)
        # the pooled caption (mean of the real tokens' features, `TextEncoding.pooled`) → the time embedding, zero at first
        self.pool = nn.Linear(cfg.context_dim, cfg.time_dim) if cfg.context_pooling else None
        if self.pool is not None:
            nn.init.zeros_(self.pool.weight)
            nn.init.zeros_(self.pool.bias)
        p2 = cfg.patch_size**2
        self.stem = nn.Conv2d(cfg.in_channels * p2, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch[0]]
        for i, c in enumerate(ch):
            cins = [ch[i - 1] if i else ch[0]] + [c] * (cfg.blocks_per_level - 1)
            self.down.append(Level(cins, c, cfg, i in cfg.attention_levels))
            skips += [c] * cfg.blocks_per_level
            if i < len(ch) - 1:
                skips.append(c)
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in ch[:-1])
        self.mid = Level([ch[-1], ch[-1]], ch[-1], cfg, cfg.mid_attention)
        self.up = nn.ModuleList()
        cin = ch[-1]
        for i in reversed(range(len(ch))):
            cins = []
            for _ in range(cfg.blocks_per_level + 1):
                cins.append(cin + skips.pop())
                cin = ch[i]
            self.up.append(Level(cins, ch[i], cfg, i in cfg.attention_levels))
        self.upsample = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for c in reversed(ch[1:]))
        self.head = nn.Sequential(nn.GroupNorm(cfg.groups, ch[0]), nn.SiLU(),
                                  nn.Conv2d(ch[0], cfg.out_channels * p2, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def embed(self, t: Tensor, cond) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The per-example embedding (time + label + pooled context) and the cross-attention context and mask."""
        emb = self.time(t)
        label, context, mask = _unpack(cond)
        if label is not None:
            if self.label is None:
                raise ValueError("this UNet has no label embedding (config.num_classes is None) but got labels")
            n = self.config.num_classes
            if label.numel() and not bool(((label >= 0) & (label <= n)).all()):
                raise ValueError(f"labels must lie in 0..{n - 1} (the classes) or be {n} (no label), got values from "
                                 f"{int(label.min())} to {int(label.max())}")
            emb = emb + self.label(label)
        if context is not None and self.config.context_dim is None:
            raise ValueError("this UNet has no cross-attention (config.context_dim is None) but got a context")
        if context is not None and self.pool is not None:
            emb = emb + self.pool(masked_mean(context, mask))
        return emb, context, mask

    def forward(self, x: Tensor, t: Tensor, cond=None) -> Tensor:
        cfg = self.config
        div = cfg.patch_size * 2 ** (len(cfg.channels) - 1)
        if x.ndim != 4 or x.shape[1] != cfg.in_channels or x.shape[-1] % div or x.shape[-2] % div:
            raise ValueError(f"x must be (B, {cfg.in_channels}, H, W) with H, W divisible by {div}, got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        emb, context, mask = self.embed(t, cond)
        h = self.stem(F.pixel_unshuffle(x, cfg.patch_size) if cfg.patch_size > 1 else x)
        skips = [h]
        for i, level in enumerate(self.down):  # 1. down: residual blocks, remember every output
            for j in range(len(level.res)):
                h = level.block(j, h, emb, context, mask)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                skips.append(h)
        h = self.mid.block(1, self.mid.block(0, h, emb, context, mask), emb, context, mask)  # 2. middle
        for k, level in enumerate(self.up):  # 3. up: concatenate the matching skip before each block
            for j in range(len(level.res)):
                h = level.block(j, torch.cat([h, skips.pop()], dim=1), emb, context, mask)
            if k < len(self.upsample):
                h = self.upsample[k](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.head(h)  # 4. back to image channels (and unfold patches)
        return F.pixel_shuffle(out, cfg.patch_size) if cfg.patch_size > 1 else out


def _unpack(cond) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    if cond is None:
        return None, None, None
    if torch.is_tensor(cond):
        return cond.long(), None, None
    if isinstance(cond, dict):
        unknown = set(cond) - {"label", "context", "context_mask"}
        if unknown:
            raise ValueError(f"cond dict keys must be among 'label', 'context', 'context_mask'; got {sorted(unknown)}")
        label = cond.get("label")
        return (label.long() if label is not None else None), cond.get("context"), cond.get("context_mask")
    raise TypeError(f"cond must be None, a LongTensor of labels or a dict, got {type(cond).__name__}")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


#: config fields `grow` may change: each only adds layers that start at zero (attention blocks whose output projection
#: is zero, a zero position projection, a zero pooled-caption projection), so the grown network starts as the old one.
GROWABLE_FIELDS = ("attention_levels", "mid_attention", "attention_position", "context_pooling")


def config_changes(old: UNetConfig, new: UNetConfig, skip: tuple[str, ...] = ()) -> list[str]:
    """"field: old → new" for every field (outside `skip`) where two U-Net configs differ, in the config's order."""
    a, b = old.to_dict(), new.to_dict()
    return [f"{k}: {a[k]} → {b[k]}" for k in a if a[k] != b[k] and k not in skip]


def grow(net: UNet, config: UNetConfig) -> UNet:
    """A copy of `net` with the layers `config` adds (`GROWABLE_FIELDS`: attention at more levels, position in
    attention, the pooled caption), every old weight copied and every new layer starting at zero, so the copy computes
    exactly what `net` computes until training moves the new layers (the way the class and text models add their
    conditioning to a trained U-Net). Refuses a config that removes layers or changes any other field."""
    changed = config_changes(net.config, config, skip=GROWABLE_FIELDS)
    if changed:
        raise ValueError(f"grow can only add layers ({', '.join(GROWABLE_FIELDS)}); these fields differ: "
                         + "; ".join(changed))
    old, new = net.config.to_dict(), config.to_dict()
    removed = [k for k in GROWABLE_FIELDS if k != "attention_levels" and old[k] and not new[k]]  # the on/off ones
    removed += [f"attention at level {a}" for a in old["attention_levels"] if a not in new["attention_levels"]]
    if removed:
        raise ValueError(f"grow cannot remove layers: {', '.join(removed)}")
    grown = UNet(config).to(next(net.parameters()).device)
    _, unexpected = grown.load_state_dict(net.state_dict(), strict=False)  # the new layers keep their zero start
    if unexpected:  # cannot happen for a UNet grown along GROWABLE_FIELDS; says so if the U-Net's layout ever changes
        raise RuntimeError(f"the grown U-Net lacks weights of the old one: {unexpected[:5]}")
    return grown
