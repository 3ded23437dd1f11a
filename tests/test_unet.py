"""The U-Net: shapes through every configuration, conditioning hooks, determinism and clear errors."""
import pytest
import torch

from diffusion_course import UNet, UNetConfig, count_parameters
from diffusion_course.networks.unet import Attention, ResBlock, grid_features


def _x(b=2, c=3, s=32):
    return torch.randn(b, c, s, s, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("cfg", [
    UNetConfig(channels=(16, 32), attention_levels=(1,), time_dim=32),
    UNetConfig(channels=(16, 32, 32), blocks_per_level=2, attention_levels=(), mid_attention=False, time_dim=32),
    UNetConfig(channels=(16, 32, 32), patch_size=2, attention_levels=(2,), time_dim=32),
    UNetConfig(in_channels=1, out_channels=1, channels=(16, 32), attention_levels=(0, 1), time_dim=32),
    UNetConfig(in_channels=4, out_channels=4, image_size=8, channels=(32, 64), attention_levels=(1,), time_dim=32),
])
def test_output_shape_matches_input(cfg):
    net = UNet(cfg)
    x = _x(3, cfg.in_channels, cfg.image_size)
    assert net(x, torch.tensor([0.0, 10.5, 999.0])).shape == (3, cfg.out_channels, cfg.image_size, cfg.image_size)
    assert net(x, torch.tensor(5.0)).shape == x.shape[:1] + (cfg.out_channels,) + x.shape[2:]


def test_zero_initialised_output_and_time_dependence_after_a_step():
    net = UNet(UNetConfig(channels=(16, 32), time_dim=32))
    x = _x()
    assert net(x, torch.tensor([1.0, 2.0])).abs().max() == 0  # the head starts at zero
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):  # zero-initialised layers need two steps before the time path gets gradient
        opt.zero_grad()
        (net(x, torch.tensor([1.0, 900.0])) - x).pow(2).mean().backward()
        opt.step()
    a, b = net(x, torch.tensor([1.0, 1.0])), net(x, torch.tensor([900.0, 900.0]))
    assert not torch.allclose(a, b), "the output must depend on t"


def test_class_and_text_conditioning_change_the_output():
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(16, 32), time_dim=32, num_classes=4, context_dim=8))
    for p in net.parameters():  # make the zero-initialised layers live
        torch.nn.init.normal_(p, std=0.05)
    x, t = _x(), torch.tensor([100.0, 100.0])
    ctx = torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    base = net(x, t)
    assert not torch.allclose(net(x, t, torch.tensor([0, 1])), base)
    assert not torch.allclose(net(x, t, {"context": ctx, "context_mask": mask}), base)
    # a padded token must not matter: changing it leaves the output unchanged
    ctx2 = ctx.clone()
    ctx2[1, 3] += 5.0
    out1 = net(x, t, {"label": torch.tensor([4, 4]), "context": ctx, "context_mask": mask})
    out2 = net(x, t, {"label": torch.tensor([4, 4]), "context": ctx2, "context_mask": mask})
    torch.testing.assert_close(out1[1], out2[1])
    assert not torch.allclose(out1[0], net(x, t, {"label": torch.tensor([4, 4]), "context": ctx2 * 0, "context_mask": mask})[0])


def test_cross_attention_shapes_and_weights():
    attn = Attention(32, head_dim=16, groups=8, context_dim=12)
    attn.keep_weights = True
    x, ctx = torch.randn(2, 32, 4, 4), torch.randn(2, 7, 12)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 5:] = False
    assert attn(x, ctx, mask).shape == x.shape
    w = attn.last_weights
    assert w.shape == (2, 2, 16, 7)  # (batch, heads, pixels, tokens)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 16))
    assert w[0, :, :, 5:].abs().max() == 0  # padding gets no attention
    attn.keep_weights = False
    torch.testing.assert_close(attn(x, ctx, mask), Attention.forward(attn, x, ctx, mask))


def test_grid_features_are_the_closed_form_fourier_features_of_pixel_centres():
    f = grid_features(2, 3)
    assert f.shape == (6, 16)
    y = torch.tensor([-0.5, -0.5, -0.5, 0.5, 0.5, 0.5])  # row by row: pixel centres in [-1, 1]
    x = torch.tensor([-2 / 3, 0.0, 2 / 3] * 2)
    k = torch.pi / 2 * torch.tensor([1.0, 2.0, 4.0, 8.0])
    expected = torch.cat([(y[:, None] * k).sin(), (y[:, None] * k).cos(), (x[:, None] * k).sin(), (x[:, None] * k).cos()], 1)
    torch.testing.assert_close(f, expected)


@pytest.mark.parametrize("context_dim", [None, 12])
def test_without_a_position_embedding_attention_cannot_tell_pixels_apart(context_dim):
    torch.manual_seed(0)
    plain = Attention(32, head_dim=16, groups=8, context_dim=context_dim)
    placed = Attention(32, head_dim=16, groups=8, context_dim=context_dim, position=True)
    state = plain.state_dict()
    torch.nn.init.normal_(state["out.weight"], std=0.1)
    plain.load_state_dict(state)
    placed.load_state_dict(state, strict=False)  # same weights; the position projection starts at zero
    x = torch.randn(2, 32, 1, 1).expand(2, 32, 4, 4) + torch.linspace(0, 1, 32)[None, :, None, None]
    ctx = torch.randn(2, 5, 12) if context_dim else None
    out = plain(x, ctx)
    torch.testing.assert_close(out, out[:, :, :1, :1].expand_as(out))  # a constant map stays constant: no "where"
    torch.testing.assert_close(placed(x, ctx), out)  # zero-initialised: no effect until trained
    torch.nn.init.normal_(placed.position.weight, std=1.0)
    moved = placed(x, ctx)
    assert (moved - moved[:, :, :1, :1]).abs().amax() > 1e-3  # with it, each pixel's output depends on where it is


def test_attention_position_adds_parameters_only_where_attention_is():
    base = UNetConfig(channels=(16, 32, 32), attention_levels=(2,), context_dim=8, time_dim=32)
    a, b = UNet(base), UNet(base, attention_position=True)
    extra = count_parameters(b) - count_parameters(a)
    assert extra == 16 * 32 * (2 + 4 + 4)  # (self + cross) × (1 block down + 2 up at level 2 + 2 in the middle)
    assert b(_x(), torch.tensor([1.0, 2.0]), {"context": torch.randn(2, 3, 8)}).shape == (2, 3, 32, 32)


def test_masked_mean_averages_only_real_tokens():
    from diffusion_course.networks.embeddings import masked_mean

    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(masked_mean(x, mask), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))  # padding's 100s unseen
    torch.testing.assert_close(masked_mean(x), x.mean(1))  # no mask: every token is real
    assert torch.equal(masked_mean(x, torch.zeros(2, 3, dtype=torch.bool)), torch.zeros(2, 2))  # no NaN
    with pytest.raises(ValueError, match="mask must be"):
        masked_mean(x, mask[:, :2])
    with pytest.raises(ValueError, match="tokens must be"):
        masked_mean(x[0], mask[0])


def test_context_pooling_adds_the_text_encoders_pooled_vector_to_the_time_embedding():
    from diffusion_course.networks.text import TextEncoder

    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(16, 32), time_dim=32, context_dim=8, context_pooling=True))
    assert count_parameters(net) - count_parameters(UNet(net.config, context_pooling=False)) == 8 * 32 + 32
    enc = TextEncoder(vocab_size=12, max_len=6, dim=8, layers=1, heads=2)
    ids = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 7, 2, 0, 0, 0]])
    out = enc(ids)
    t = torch.tensor([3.0, 40.0])
    cond = {"context": out.tokens, "context_mask": out.mask}
    base, _, _ = net.embed(t, None)
    emb, _, _ = net.embed(t, cond)
    torch.testing.assert_close(emb, base)  # zero-initialised: a fine-tune starts from exactly the old network
    torch.nn.init.normal_(net.pool.weight)
    emb, _, _ = net.embed(t, cond)
    torch.testing.assert_close(emb, base + net.pool(out.pooled))  # the encoder's own pooled output, padding excluded
    unmasked, _, _ = net.embed(t, {"context": out.tokens})  # no mask: every token counts, padding too
    assert not torch.allclose(unmasked, emb)
    with pytest.raises(ValueError, match="context_pooling needs a context"):
        UNetConfig(context_pooling=True)


def test_resblock_uses_the_embedding():
    block = ResBlock(8, 16, emb_dim=4, groups=4, dropout=0.0)
    torch.nn.init.normal_(block.conv2.weight, std=0.1)
    x = torch.randn(2, 8, 6, 6)
    assert block(x, torch.zeros(2, 4)).shape == (2, 16, 6, 6)
    assert not torch.allclose(block(x, torch.zeros(2, 4)), block(x, torch.ones(2, 4)))


def test_same_seed_same_weights_and_outputs():
    torch.manual_seed(1)
    a = UNet(UNetConfig(channels=(16, 32), time_dim=32))
    torch.manual_seed(1)
    b = UNet(UNetConfig(channels=(16, 32), time_dim=32))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert count_parameters(a) == count_parameters(b) > 10_000


def test_bad_configs_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        UNetConfig(channels=(12, 32))
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(channels=(16, 32), attention_levels=(2,))
    with pytest.raises(ValueError, match="image_size"):
        UNetConfig(image_size=30)
    net = UNet(UNetConfig(channels=(16, 32), time_dim=32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.randn(2, 1, 32, 32), torch.zeros(2))
    with pytest.raises(ValueError, match="num_classes"):
        net(_x(), torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="context_dim"):
        net(_x(), torch.zeros(2), {"context": torch.randn(2, 3, 8)})
    with pytest.raises(ValueError, match="cond dict keys"):
        net(_x(), torch.zeros(2), {"labels": torch.tensor([0, 1])})


def test_grow_adds_zero_layers_so_the_grown_network_starts_as_the_old_one_then_can_learn():
    from diffusion_course.networks.unet import grow

    torch.manual_seed(0)
    small = UNetConfig(in_channels=4, out_channels=4, image_size=8, channels=(16, 32), attention_levels=(1,),
                       mid_attention=False, time_dim=32, context_dim=8)
    net = UNet(small)
    for p in net.parameters():  # a "trained" network: no zero layers left that would hide a wrong copy
        torch.nn.init.normal_(p, std=0.05)
    big = UNetConfig(**{**small.to_dict(), "attention_levels": (0, 1), "mid_attention": True,
                        "attention_position": True, "context_pooling": True})
    grown = grow(net, big)
    assert grown.config == big and count_parameters(grown) > count_parameters(net)
    x, t = _x(3, 4, 8), torch.tensor([5.0, 200.0, 900.0])
    cond = {"context": torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(1)),
            "context_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)}
    with torch.no_grad():
        torch.testing.assert_close(grown(x, t, cond), net(x, t, cond), rtol=0, atol=0)  # exactly the old function
        grown.down[0].cross_attn[0].out.weight.normal_()  # a new layer moved: the function changes
        assert not torch.allclose(grown(x, t, cond), net(x, t, cond))
    old = dict(net.named_parameters())
    for name, p in grown.named_parameters():  # the copy owns its weights: training it leaves `net` alone
        assert name not in old or p.data_ptr() != old[name].data_ptr()


def test_grow_refuses_to_remove_layers_or_change_the_backbone():
    from diffusion_course.networks.unet import grow

    cfg = UNetConfig(channels=(16, 32), attention_levels=(0, 1), time_dim=32, context_dim=8, context_pooling=True)
    net = UNet(cfg)
    with pytest.raises(ValueError, match="cannot remove layers: context_pooling, attention at level 0"):
        grow(net, UNetConfig(**{**cfg.to_dict(), "attention_levels": (1,), "context_pooling": False}))
    with pytest.raises(ValueError, match="channels: \\(16, 32\\) → \\(32, 64\\)"):
        grow(net, UNetConfig(**{**cfg.to_dict(), "channels": (32, 64)}))
