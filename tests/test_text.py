"""Text conditioning: tokenizer, text encoder, conditioner, dropping for guidance, and the offline CLIP path."""
import itertools
import os
import string
import subprocess
import sys
import warnings

import pytest
import torch

from diffusion_course.core.schedules import NoiseSchedule
from diffusion_course.data import shapes
from diffusion_course.networks.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    TEXT_IDS,
    TEXT_MASK,
    UNK_ID,
    PromptWarning,
    TextConditionedModel,
    TextConditioner,
    TextEncoder,
    TextEncoderConfig,
    Tokenizer,
    drop_captions,
    normalise_caption,
)
from diffusion_course.networks.unet import UNet, UNetConfig
from diffusion_course.training.checkpoints import load_checkpoint, save_checkpoint
from diffusion_course.training.loop import TrainConfig, train_diffusion

CAPTIONS = [
    "a small red triangle in the top left on a dark background",  # 12 words: 14 tokens
    "a large white star at the bottom on a striped background",  # 11 words: 13 tokens
    "",  # the empty prompt: [BOS][EOS]
]


def _all_grammar_captions() -> list[str]:
    names = ("size", "colour", "shape", "position", "background")
    grid = torch.tensor(list(itertools.product(*(range(len(shapes.VOCABULARIES[n])) for n in names))))
    return shapes.captions_from_attrs({n: grid[:, i] for i, n in enumerate(names)})


def _encoder(seed=0, **overrides) -> TextEncoder:
    torch.manual_seed(seed)
    return TextEncoder(TextEncoderConfig(**overrides)).eval()


def _conditioner(seed=0, **overrides) -> TextConditioner:
    return TextConditioner(_encoder(seed, **overrides))


# --- tokenizer --------------------------------------------------------------------------------

def test_vocabulary_is_special_tokens_then_the_sorted_caption_words():
    tok = Tokenizer()
    assert tok.vocab[:4] == SPECIAL_TOKENS == ("[PAD]", "[BOS]", "[EOS]", "[UNK]") and PAD_ID == 0
    assert tok.vocab[4:] == shapes.caption_words() == tuple(sorted(shapes.caption_words()))
    assert len(tok) == tok.vocab_size == TextEncoderConfig().vocab_size == len(set(tok.vocab))


def test_tokenizer_adds_bos_eos_pads_and_masks():
    ids, mask = Tokenizer()(CAPTIONS)
    assert ids.shape == mask.shape == (3, 16) and ids.dtype == torch.long and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [14, 13, 2]
    assert ids[0, 0] == BOS_ID and ids[0, 13] == EOS_ID and ids[1, 12] == EOS_ID
    assert (ids[~mask] == PAD_ID).all() and (ids[mask] != PAD_ID).all()
    assert ids[2, :2].tolist() == [BOS_ID, EOS_ID]  # the empty prompt
    assert mask[:, 0].all() and mask[0, :14].all() and not mask[0, 14:].any()  # real tokens first, padding after


def test_tokenizer_lowercases_and_splits_on_any_whitespace():
    tok = Tokenizer()
    ids, _ = tok(["  A SMALL Red\ttriangle in the TOP left  on a dark\nbackground "])
    assert torch.equal(ids[0], tok(CAPTIONS[:1])[0][0])


def test_every_grammar_caption_fits_and_round_trips():
    captions = _all_grammar_captions()
    assert len(captions) == 3 * 8 * len(shapes.SHAPES) * 9 * len(shapes.BACKGROUNDS)
    tok = Tokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unknown word, no truncation
        ids, mask = tok(captions)
    assert int(mask.sum(1).max()) == 14 <= tok.max_len  # the longest caption, [BOS] and [EOS] included
    assert not (ids == UNK_ID).any()
    assert tok.decode(ids) == captions


def test_unknown_words_become_unk_with_a_warning_every_time():
    tok = Tokenizer()
    with pytest.warns(PromptWarning, match="'pink'.*UNK"):
        ids, mask = tok(["a pink star", "a pink moon"])
    assert ids[0, 2] == UNK_ID and mask[0, :5].all()
    assert tok.decode(ids[0]) == "a [UNK] star"
    for _ in range(2):  # the same word again: warned again, whoever calls
        with pytest.warns(PromptWarning, match="'pink'"):
            tok(["a pink heart"])


def test_prompts_typed_the_natural_way_read_like_the_training_captions():
    tok = Tokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing lost: no warning
        for messy, clean in [("A red circle.", "a red circle"), ("a red, circle", "a red circle"),
                             ("An orange star in the center!", "a orange star in the centre"),
                             ("  A LARGE blue heart; on a dark background  ", "a large blue heart on a dark background")]:
            assert normalise_caption(messy) == clean.split()
            assert tok([messy])[0].equal(tok([clean])[0]), messy
    assert normalise_caption("a color") == ["a", "color"]  # mapped only where the grammar has the word


def test_the_training_captions_keep_their_token_ids_exactly():
    captions = _all_grammar_captions()
    tok = Tokenizer()
    ids, _ = tok(captions)
    by_split = [[BOS_ID, *(tok.ids[w] for w in c.split()), EOS_ID] for c in captions]
    assert [row[: len(want)].tolist() for row, want in zip(ids, by_split)] == by_split


def test_long_captions_are_truncated_keeping_eos():
    tok = Tokenizer(max_len=5)
    with pytest.warns(PromptWarning, match="cut to the first 3.*dropped: star on a dark background"):
        ids, mask = tok(["a small red star on a dark background", "a star"])
    assert ids[0].tolist() == [BOS_ID, tok.ids["a"], tok.ids["small"], tok.ids["red"], EOS_ID] and mask[0].all()
    assert tok.decode(ids) == ["a small red", "a star"]
    assert ids[1].tolist() == [BOS_ID, tok.ids["a"], tok.ids["star"], EOS_ID, PAD_ID]


def test_decode_one_row_or_a_batch():
    tok = Tokenizer()
    ids, _ = tok(CAPTIONS)
    assert tok.decode(ids[1]) == CAPTIONS[1]
    assert tok.decode(ids.tolist()) == CAPTIONS
    assert tok.decode([BOS_ID, tok.ids["red"], EOS_ID, tok.ids["star"]]) == "red"  # stops at [EOS]


@pytest.mark.parametrize("call, error, match", [
    (lambda tok: tok("a red star"), TypeError, r"captions must be a list of str.*\[caption\]"),
    (lambda tok: tok(None), TypeError, "captions must be a list of str"),
    (lambda tok: tok(["a red star", 3]), TypeError, "contains int 3"),
    (lambda tok: Tokenizer(max_len=1), ValueError, "max_len must be an int >= 2"),
    (lambda tok: Tokenizer(max_len=8.0), ValueError, "max_len"),
    (lambda tok: tok.decode(torch.tensor([1, 99])), ValueError, r"ids must lie in \[0, 39\)"),
    (lambda tok: tok.decode(torch.zeros(2, 2, 2, dtype=torch.long)), ValueError, "ids must be integer token ids"),
    (lambda tok: tok.decode(torch.tensor([1.0, 2.0])), ValueError, "ids must be integer"),
])
def test_tokenizer_rejects_bad_input_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call(Tokenizer())


# --- encoder ----------------------------------------------------------------------------------

def test_encoder_shapes_and_pooled_is_the_mean_of_real_tokens():
    ids, mask = Tokenizer()(CAPTIONS)
    out = _encoder()(ids, mask)
    assert out.tokens.shape == (3, 16, 64) and out.pooled.shape == (3, 64) and torch.equal(out.mask, mask)
    assert (out.tokens[~mask] == 0).all() and (out.tokens[mask].abs().sum(-1) > 0).all()
    for i in range(3):
        torch.testing.assert_close(out.pooled[i], out.tokens[i, mask[i]].mean(0))
    torch.testing.assert_close(_encoder()(ids).tokens, out.tokens)  # mask=None means ids != [PAD]


def test_same_seed_same_weights_same_outputs():
    ids, mask = Tokenizer()(CAPTIONS)
    a, b, c = _encoder(0, dropout=0.1), _encoder(0, dropout=0.1), _encoder(1, dropout=0.1)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.equal(a(ids, mask).tokens, b(ids, mask).tokens)
    assert torch.equal(a(ids, mask).pooled, a(ids, mask).pooled)  # eval mode: dropout off
    assert not torch.allclose(a(ids, mask).pooled, c(ids, mask).pooled)
    a.train()
    assert not torch.equal(a(ids, mask).tokens, a(ids, mask).tokens)  # training mode: dropout on


@pytest.mark.parametrize("train", [False, True])
def test_padding_never_influences_real_tokens_or_pooled(train):
    ids, mask = Tokenizer()(CAPTIONS)
    enc = _encoder(dropout=0.2).train(train)
    other = ids.clone()
    g = torch.Generator().manual_seed(0)
    other[~mask] = torch.randint(0, enc.config.vocab_size, (int((~mask).sum()),), generator=g)
    torch.manual_seed(1)  # the same dropout masks for both calls in training mode
    a = enc(ids, mask)
    torch.manual_seed(1)
    b = enc(other, mask)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.pooled, b.pooled)
    enc.eval()  # the checks below compare outputs of different calls
    # the same ids without the key mask: now the padding does change the real tokens (the check can fail)
    full = torch.ones_like(mask)
    assert not torch.allclose(enc(ids, full).tokens[mask], enc(other, full).tokens[mask])
    # and a caption encodes the same alone as in a padded batch
    torch.testing.assert_close(enc(ids[1:2], mask[1:2]).pooled[0], enc(ids, mask).pooled[1])


@pytest.mark.parametrize("make, match", [
    (lambda ids, mask: (ids.float(), mask), "ids must be an int64 tensor"),
    (lambda ids, mask: (ids[0], mask[0]), "ids must be an int64 tensor"),
    (lambda ids, mask: (torch.cat([ids, ids], 1), None), "max_len=16"),
    (lambda ids, mask: (ids + 100, mask), r"vocab_size=39"),
    (lambda ids, mask: (ids, mask.long()), "mask must be a bool tensor"),
    (lambda ids, mask: (ids, mask[:, :4]), "mask must be a bool tensor shaped like ids"),
    (lambda ids, mask: (ids, mask & False), "at least one real token"),
])
def test_encoder_rejects_bad_ids_and_masks(make, match):
    ids, mask = Tokenizer()(CAPTIONS)
    with pytest.raises(ValueError, match=match):
        _encoder()(*make(ids, mask))


def test_config_checks_and_checkpoint_round_trip(tmp_path):
    for bad, match in [({"dim": 30}, "divisible by heads"), ({"layers": 0}, "layers"), ({"dropout": 1.0}, "dropout"),
                       ({"max_len": True}, "max_len")]:
        with pytest.raises(ValueError, match=match):
            TextEncoderConfig(**bad)
    enc = _encoder(dim=32, layers=1)
    save_checkpoint("text", enc, "text_encoder", enc.config.to_dict(), directory=tmp_path)
    loaded, info = load_checkpoint("text", expect=enc.config, directory=tmp_path)
    assert isinstance(loaded, TextEncoder) and info["kind"] == "text_encoder"
    ids, mask = Tokenizer()(CAPTIONS)
    assert torch.equal(loaded(ids, mask).tokens, enc(ids, mask).tokens)


# --- conditioner, dropping for guidance, joint training ---------------------------------------

def test_conditioner_gives_the_unet_cond_and_the_null_cond():
    cond_fn = _conditioner(dim=16, heads=2)
    cond = cond_fn(CAPTIONS[:2])
    assert set(cond) == {"context", "context_mask"} and cond["context"].shape == (2, 16, 16)
    assert torch.equal(cond["context_mask"], Tokenizer()(CAPTIONS[:2])[1])
    null = cond_fn.null_cond(3)
    assert torch.equal(null["context"], cond_fn([""] * 3)["context"])
    assert null["context_mask"].sum(1).tolist() == [2, 2, 2]
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(8, 16), groups=4, time_dim=16, image_size=8, context_dim=cond_fn.context_dim))
    assert net(torch.zeros(2, 3, 8, 8), torch.tensor([3.0, 4.0]), cond).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        cond_fn.null_cond(0)
    assert TextConditioner(_encoder(max_len=8)).tokenizer.max_len == 8
    with pytest.raises(ValueError, match="vocab_size=10"):
        TextConditioner(_encoder(vocab_size=10))


def test_drop_captions_replaces_exactly_the_masked_ones():
    caps = ["a red star", "a blue moon", "a cyan heart", "a white cross"]
    assert drop_captions(caps, torch.tensor([True, False, True, False])) == ["", "a blue moon", "", "a white cross"]
    assert drop_captions(caps, [False] * 4) == caps and drop_captions(caps, [True] * 4) == [""] * 4
    with pytest.raises(ValueError, match="one entry per caption"):
        drop_captions(caps, [True, False])
    with pytest.raises(TypeError, match="captions"):
        drop_captions("a red star", [True])


def test_drop_on_token_ids_replaces_exactly_the_masked_examples():
    cond_fn = _conditioner()
    caps = CAPTIONS[:2] * 2
    m = torch.tensor([True, False, False, True])
    cond = {**cond_fn.tokenize(caps), "label": torch.arange(4)}
    dropped = cond_fn.drop(cond, m)
    expected = cond_fn.tokenize(drop_captions(caps, m))
    assert torch.equal(dropped[TEXT_IDS], expected[TEXT_IDS]) and torch.equal(dropped[TEXT_MASK], expected[TEXT_MASK])
    assert torch.equal(dropped["label"], torch.arange(4))  # other keys untouched
    assert torch.equal(cond[TEXT_IDS], cond_fn.tokenize(caps)[TEXT_IDS])  # not edited in place
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(4,\)"):
        cond_fn.drop(cond, m.float())
    with pytest.raises(ValueError, match="cond must be a dict"):
        cond_fn.drop(torch.arange(4), m)


def test_drop_on_an_encoded_cond_recomputes_the_null_and_keeps_gradients():
    cond_fn = _conditioner()
    caps = ["a small red star in the centre on a dark background", "a large blue moon at the top on a light background"]
    m = torch.tensor([False, True])
    dropped = cond_fn.drop(cond_fn(caps), m)
    with torch.no_grad():
        kept, null = cond_fn(caps[:1]), cond_fn.null_cond(1)
    torch.testing.assert_close(dropped["context"][0], kept["context"][0])
    torch.testing.assert_close(dropped["context"][1], null["context"][0])
    assert torch.equal(dropped["context_mask"][1], null["context_mask"][0])
    weights = torch.randn(dropped["context"].shape, generator=torch.Generator().manual_seed(0))
    (dropped["context"] * weights).sum().backward()
    grad = cond_fn.encoder.token.weight.grad.abs().sum(-1)
    ids = cond_fn.tokenizer.ids
    assert grad[ids["red"]] > 0 and grad[ids["blue"]] == 0  # the kept caption gets gradient, the dropped one none
    cond_fn.encoder.zero_grad()
    (cond_fn.drop(cond_fn(caps), torch.tensor([True, True]))["context"] * weights).sum().backward()
    grad = cond_fn.encoder.token.weight.grad.abs().sum(-1)
    assert grad[BOS_ID] > 0 and grad[EOS_ID] > 0 and grad[ids["red"]] == 0  # the null encoding is learned too


def test_text_conditioned_model_trains_the_encoder_with_the_unet():
    cond_fn = _conditioner(dim=16, heads=2, layers=1)
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(8, 16), groups=4, time_dim=16, image_size=8, context_dim=16))
    for p in net.parameters():  # make the zero-initialised layers live, so gradient reaches the context at once
        torch.nn.init.normal_(p, std=0.05)
    model = TextConditionedModel(net, cond_fn)
    x, t = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([10.0, 500.0])
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, cond_fn.tokenize(CAPTIONS[:2])), net(x, t, cond_fn(CAPTIONS[:2])))
        torch.testing.assert_close(model(x, t, cond_fn.null_cond(2)), net(x, t, cond_fn.null_cond(2)))  # passed through
    before = {k: v.clone() for k, v in cond_fn.encoder.state_dict().items()}
    images = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    next_batch = lambda g: (images, cond_fn.tokenize(CAPTIONS[:2] * 2))  # noqa: E731
    cfg = TrainConfig(steps=2, batch_size=4, warmup=1, cond_drop=0.5, lr=1e-2)
    result = train_diffusion(model, NoiseSchedule.linear(100), next_batch, cfg, drop_condition=model.drop,
                             show_progress=False)
    assert len(result.losses) == 2 and torch.isfinite(torch.tensor(result.losses)).all()
    changed = [k for k, v in cond_fn.encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert "token.weight" in changed and "position" in changed
    assert isinstance(result.ema, TextConditionedModel)


# --- optional CLIP path (no download: a tiny random CLIP saved to a temporary folder) ----------

@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    letters = string.ascii_lowercase
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{c: 2 + i for i, c in enumerate(letters)},
             **{c + "</w>": 28 + i for i, c in enumerate(letters)}}  # one token per letter: enough for plumbing
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=[])
    config = transformers.CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=64,
                                         bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    model = transformers.CLIPTextModel(config)
    path = tmp_path_factory.mktemp("tiny_clip")
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer.save_pretrained(path)
        model.save_pretrained(path)
        model.save_pretrained(path / "model_only")
    finally:
        transformers.utils.logging.enable_progress_bar()
    return path


def test_clip_wrapper_gives_the_unet_cond_from_local_files(tiny_clip_dir, capsys):
    from diffusion_course.networks.clip_text import (
        ClipTextConditioner,
        load_clip_text_encoder,
    )

    clip = load_clip_text_encoder(str(tiny_clip_dir))
    assert isinstance(clip, ClipTextConditioner) and capsys.readouterr().out == ""
    assert clip.context_dim == 32 and clip.max_len == 64 and not any(p.requires_grad for p in clip.parameters())
    cond = clip(CAPTIONS)
    assert cond["context"].shape == (3, 64, 32) and cond["context_mask"].dtype == torch.bool
    assert cond["context_mask"].sum(1).tolist() == [2 + sum(c.isalpha() for c in cap) for cap in CAPTIONS]
    ids = torch.tensor([[0, 19, 6, 31, 1, 1], [0, 1, 1, 1, 1, 1]])  # "red" letter by letter; the empty prompt
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]]).bool()
    out = clip.encode_cond({TEXT_IDS: ids, TEXT_MASK: mask, "label": torch.tensor([1, 2])})
    torch.testing.assert_close(out["context"], clip.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state)
    assert torch.equal(out["context_mask"], mask) and out["label"].tolist() == [1, 2]
    null = clip.null_cond(2)
    assert null["context_mask"].sum(1).tolist() == [2, 2]
    dropped = clip.drop(cond, torch.tensor([False, True, False]))
    torch.testing.assert_close(dropped["context"][1], null["context"][0])
    torch.testing.assert_close(dropped["context"][[0, 2]], cond["context"][[0, 2]])
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(8, 16), groups=4, time_dim=16, image_size=8, context_dim=clip.context_dim))
    assert net(torch.zeros(3, 3, 8, 8), torch.tensor(5.0), cond).shape == (3, 3, 8, 8)


def test_clip_offline_prints_one_sentence_and_returns_none(tiny_clip_dir, tmp_path, capsys):
    from diffusion_course.networks.clip_text import (
        OFFLINE_MESSAGE,
        load_clip_text_encoder,
    )

    for where in [str(tmp_path / "nowhere"), str(tmp_path), "diffusion-course/no-such-clip-model",
                  str(tiny_clip_dir / "model_only")]:  # the last has weights but no tokenizer
        assert load_clip_text_encoder(where) is None
        out, err = capsys.readouterr()
        assert out == OFFLINE_MESSAGE + "\n" and err == "", where
    assert OFFLINE_MESSAGE.count(".") == 1 and OFFLINE_MESSAGE.endswith("skipped.")


def test_clip_makes_no_network_call_even_outside_make():
    """Without HF_HUB_OFFLINE (a learner's own `jupyter lab`), asking for CLIP by its Hub name must not try to connect."""
    script = ("import socket\n"
              "def refuse(*a, **k):\n"
              "    raise SystemExit(f'network call: {a[:2]}')\n"
              "socket.getaddrinfo = refuse\n"
              "socket.socket.connect = lambda self, addr: refuse(addr)\n"
              "from diffusion_course.networks.clip_text import load_clip_text_encoder\n"
              "assert load_clip_text_encoder() is None\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "network call" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_word_sensitivity_sees_exactly_the_words_a_model_uses():
    from diffusion_course.evaluation.text_probes import WORD_SWAPS, word_sensitivity
    from diffusion_course.networks.text import TEXT_IDS
    cond_fn = _conditioner()
    blue = cond_fn.tokenizer.vocab.index("blue")

    def ignores_text(x, sigma, cond=None):
        return x * 0.5

    def reads_blue(x, sigma, cond=None):  # x̂₀ shifts by 1 where the caption says "blue"
        return x * 0.5 + (cond[TEXT_IDS] == blue).any(1).float()[:, None, None, None]

    deaf = word_sensitivity(ignores_text, cond_fn, n=4, image_shape=(3, 8, 8))
    assert set(deaf) == set(WORD_SWAPS) and all(v == [0.0] * 4 for v in deaf.values())
    colour_only = word_sensitivity(reads_blue, cond_fn, n=4, image_shape=(3, 8, 8))
    assert colour_only["colour"] == pytest.approx([1.0] * 4)
    assert all(v == [0.0] * 4 for k, v in colour_only.items() if k != "colour")


def test_context_sensitivity_measures_how_far_the_encoder_moves_a_caption():
    from diffusion_course.evaluation.text_probes import context_sensitivity
    cond_fn = _conditioner()
    swaps = {"same": ("a red star", "a red star"), "colour": ("a red star", "a blue star")}
    out = context_sensitivity(cond_fn, swaps)
    assert out["same"] == 0.0
    with torch.no_grad():
        t = cond_fn.encode(["a red star", "a blue star"]).tokens
    assert out["colour"] == pytest.approx(float((t[0] - t[1]).norm() / t[0].norm()))
    assert out["colour"] > 0.1  # a random encoder keeps two different words apart
    with torch.no_grad():  # an encoder whose token embeddings for "red" and "blue" coincide cannot tell them apart
        emb = cond_fn.encoder.token.weight
        emb[cond_fn.tokenizer.vocab.index("blue")] = emb[cond_fn.tokenizer.vocab.index("red")]
    assert context_sensitivity(cond_fn, swaps)["colour"] == pytest.approx(0.0, abs=1e-6)
