"""The procedural shapes dataset: determinism, formats, vocabularies, captions, held-out pairs, contrast."""
import pytest
import torch

from diffusion_course.data import shape_render
from diffusion_course.data.shapes import (
    ATTRIBUTES,
    BACKGROUNDS,
    COLOUR_RGB,
    COLOURS,
    HELD_OUT_PAIRS,
    POSITIONS,
    SHAPES,
    SIZES,
    VOCABULARIES,
    ShapeBatch,
    ShapesDataset,
    caption_words,
    held_out_mask,
    is_held_out,
    make_shapes,
    parse_caption,
    render_shapes,
    sample_shapes,
    shape_images,
)

N_TRAIN, N_TEST = 20_000, 4_000


@pytest.fixture(scope="module")
def train() -> ShapeBatch:
    return make_shapes(N_TRAIN, "train", seed=0)


@pytest.fixture(scope="module")
def test_split() -> ShapeBatch:
    return make_shapes(N_TEST, "test", seed=0)


def test_formats(train):
    b = train
    assert b.images.shape == (N_TRAIN, 3, 32, 32) and b.images.dtype == torch.float32
    some = b.images[:1000]
    assert some.min() == -1 or some.max() == 1
    assert some.min() >= -1 and some.max() <= 1
    levels = (some + 1) * 127.5  # stored on the 8-bit grid, like a real dataset
    assert (levels - levels.round()).abs().max() < 1e-4
    assert b.labels.dtype == torch.int64 and b.labels.shape == (N_TRAIN,)
    assert torch.equal(b.labels, b.attrs["shape"])
    assert set(b.attrs) == set(ATTRIBUTES) and len(b.captions) == len(b) == N_TRAIN
    assert torch.equal(b.indices, torch.arange(N_TRAIN))
    for name in ATTRIBUTES:
        assert b.attrs[name].shape == (N_TRAIN,)
        assert b.attrs[name].dtype == (torch.float32 if name == "rotation" else torch.int64)


def test_same_image_for_same_seed_split_index_whatever_the_batch():
    full = make_shapes(1100, "train", seed=3)  # more than one internal chunk of 512
    idx = torch.randperm(1100, generator=torch.Generator().manual_seed(0))[:300]
    assert torch.equal(render_shapes(idx, "train", seed=3).images, full.images[idx])
    for i in idx[:5].tolist():
        assert torch.equal(render_shapes([i], "train", seed=3).images[0], full.images[i])
    assert torch.equal(make_shapes(200, "train", seed=3, start=700).images, full.images[700:900])
    assert torch.equal(shape_images(1100, "train", seed=3), full.images)
    assert render_shapes(idx, "train", seed=3).captions == [full.captions[i] for i in idx.tolist()]


def test_seeds_and_splits_give_different_images():
    a, b, c = make_shapes(200, "train", 0), make_shapes(200, "train", 1), make_shapes(200, "test", 0)
    for other in (b, c):
        differs = (a.images != other.images).flatten(1).any(1)
        assert differs.all()
        assert (a.attrs["shape"] != other.attrs["shape"]).float().mean() > 0.5


def test_every_attribute_value_appears(train):
    assert set(VOCABULARIES) == set(ATTRIBUTES) - {"rotation"}
    for name, vocab in VOCABULARIES.items():
        counts = torch.bincount(train.attrs[name], minlength=len(vocab))
        assert len(counts) == len(vocab) and counts.min() > 0.3 * N_TRAIN / len(vocab), name
    rot = train.attrs["rotation"]
    assert rot.min() >= -45 and rot.max() < 45 and rot.std() > 20


def test_vocabulary_sizes():
    assert len(SHAPES) >= 5 and len(COLOURS) >= 6 and len(SIZES) == 3 and len(POSITIONS) == 9
    assert len(BACKGROUNDS) >= 4 and 4 <= len(HELD_OUT_PAIRS) <= 6


def test_captions_parse_back_to_the_attributes(train):
    words = set(caption_words())
    for i in range(0, N_TRAIN, 37):
        parsed = parse_caption(train.captions[i])
        assert parsed == {k: int(train.attrs[k][i]) for k in parsed}
        assert set(train.captions[i].split()) <= words
    assert parse_caption("a small red triangle in the top left on a dark background") == {
        "size": 0, "colour": 0, "shape": SHAPES.index("triangle"), "position": 0, "background": 0}
    for bad in ("a huge red triangle in the top left on a dark background", "a red triangle", ""):
        with pytest.raises(ValueError, match="caption"):
            parse_caption(bad)


def test_caption_words_are_the_grammar_vocabulary():
    words = caption_words()
    assert list(words) == sorted(set(words))
    for word in (*SHAPES, *COLOURS, *SIZES, "top", "left", "centre", "background", "a", "on", "the"):
        assert word in words


def test_held_out_pairs_never_in_train_but_in_test(train, test_split):
    assert not held_out_mask(train.attrs).any()
    mask = held_out_mask(test_split.attrs)
    assert 0.04 < mask.float().mean() < 0.15  # test draws pairs uniformly: 5 of 64
    seen = {(COLOURS[c], SHAPES[s]) for c, s in zip(test_split.attrs["colour"][mask].tolist(),
                                                       test_split.attrs["shape"][mask].tolist())}
    assert seen == set(HELD_OUT_PAIRS)
    # the other colours of a held-out shape stay in train
    for colour, shape in HELD_OUT_PAIRS:
        in_shape = train.attrs["shape"] == SHAPES.index(shape)
        assert len(train.attrs["colour"][in_shape].unique()) == len(COLOURS) - 1


def test_is_held_out():
    for colour, shape in HELD_OUT_PAIRS:
        assert is_held_out(colour, shape) and is_held_out(COLOURS.index(colour), SHAPES.index(shape))
    assert sum(is_held_out(c, s) for c in COLOURS for s in SHAPES) == len(HELD_OUT_PAIRS)
    with pytest.raises(ValueError, match="colour must be one of"):
        is_held_out("teal", "star")
    with pytest.raises(ValueError, match="shape must be one of"):
        is_held_out("blue", 99)


def test_captions_name_the_colour_drawn(train):
    # the palette colour covering most pixels is the caption's colour (backgrounds are muted)
    imgs = (train.images[:400] + 1) / 2
    dist = (imgs[:, None] - COLOUR_RGB[None, :, :, None, None]).abs().amax(2)  # (N, colours, 32, 32)
    counts = (dist < 0.03).flatten(2).sum(2)
    assert torch.equal(counts.argmax(1), train.attrs["colour"][:400])
    assert counts.max(1).values.min() >= 8  # even small shapes cover several pixels


def _centroids(b: ShapeBatch) -> tuple[torch.Tensor, torch.Tensor]:
    imgs = (b.images + 1) / 2
    mask = ((imgs - COLOUR_RGB[b.attrs["colour"]][:, :, None, None]).abs().amax(1) < 0.03).float()
    grid = torch.arange(32.0)
    area = mask.sum((1, 2))
    return (mask.sum(1) * grid).sum(1) / area, (mask.sum(2) * grid).sum(1) / area


def test_position_and_size_match_the_caption(train):
    symmetric = [SHAPES.index(s) for s in ("circle", "square", "diamond", "cross")]
    keep = torch.isin(train.attrs["shape"], torch.tensor(symmetric))
    sel = keep.nonzero()[:2000, 0]
    b = ShapeBatch(train.images[sel], train.labels[sel], {k: v[sel] for k, v in train.attrs.items()}, [], sel)
    x, y = _centroids(b)
    col, row = b.attrs["position"] % 3 - 1, b.attrs["position"] // 3 - 1
    for offset, c in ((x - 15.5, col), (y - 15.5, row)):
        assert (offset[c == -1] < -2.5).all() and (offset[c == 1] > 2.5).all()
        assert (offset[c == 0].abs() < 2.0).all()
    circles = b.attrs["shape"] == SHAPES.index("circle")
    assert all((circles & (b.attrs["size"] == s)).sum() > 10 for s in range(3))
    radius = torch.stack([_radius(b, circles & (b.attrs["size"] == s)) for s in range(3)])
    assert radius[0] < radius[1] < radius[2]


def _radius(b: ShapeBatch, which: torch.Tensor) -> torch.Tensor:
    imgs = (b.images[which] + 1) / 2
    mask = (imgs - COLOUR_RGB[b.attrs["colour"][which]][:, :, None, None]).abs().amax(1) < 0.03
    return (mask.flatten(1).sum(1).float() / torch.pi).sqrt().mean()


def test_backgrounds_keep_contrast(train):
    g = torch.Generator().manual_seed(0)
    kind = torch.arange(1000) % len(BACKGROUNDS)
    light = torch.arange(1000) % 2 == 1
    bg = shape_render.background(kind, light, torch.rand(1000, 11, generator=g))
    luma = shape_render.luma(bg.permute(0, 2, 3, 1))
    assert luma[~light].max() <= 0.18 and luma[light].min() >= 0.74
    colour_luma = shape_render.luma(COLOUR_RGB)
    assert colour_luma.min() >= 0.18 + 0.24
    on_light = train.attrs["background"] == BACKGROUNDS.index("light")
    assert on_light.any() and colour_luma[train.attrs["colour"][on_light]].max() <= 0.74 - 0.24


def test_dataset_and_dataloader():
    ds = ShapesDataset(100, "test", seed=2)
    ref = make_shapes(100, "test", seed=2)
    assert len(ds) == 100 and len(ShapesDataset()) == 50_000 and len(ShapesDataset(split="test")) == 10_000
    image, label = ds[5]
    assert torch.equal(image, ref.images[5]) and label == ref.labels[5]
    assert torch.equal(ds[-1][0], ref.images[99])
    images, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=32)))
    assert images.shape == (32, 3, 32, 32)
    assert torch.equal(images, ref.images[:32]) and torch.equal(labels, ref.labels[:32])
    assert ds.batch([3, 4]).captions == ref.captions[3:5]
    with pytest.raises(IndexError, match="indices must lie in"):
        ds[100]


def test_sample_shapes_is_seeded_and_in_range():
    a = sample_shapes(64, torch.Generator().manual_seed(1), n=300)
    b = sample_shapes(64, torch.Generator().manual_seed(1), n=300)
    assert torch.equal(a.images, b.images) and a.indices.max() < 300
    assert torch.equal(a.images, render_shapes(a.indices).images)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        make_shapes(-1)
    with pytest.raises(ValueError, match="split must be one of"):
        make_shapes(4, split="valid")
    with pytest.raises(ValueError, match="seed must be an int"):
        make_shapes(4, seed=-1)
    with pytest.raises(ValueError, match="indices must lie in"):
        render_shapes([0, -3])
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        ShapesDataset(-5)
    with pytest.raises(ValueError, match="batch_size must be a non-negative int"):
        sample_shapes(2.5, torch.Generator())
    with pytest.raises(ValueError, match="n must be a positive int"):
        sample_shapes(4, torch.Generator(), n=0)
    assert make_shapes(0).images.shape == (0, 3, 32, 32) and shape_images(0).shape == (0, 3, 32, 32)
