import torch

from pixgen.augment import Cutouts


def test_shapes_range_and_gradients() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 70, requires_grad=True)
    cuts, _ = Cutouts(24, 10)(image)
    assert cuts.shape == (10, 3, 24, 24)
    assert -0.6 < cuts.min() and cuts.max() < 1.6  # colour jitter + noise stay near [0, 1]
    cuts.sum().backward()
    assert image.grad.abs().sum() > 0


def test_replay_applies_the_same_transforms() -> None:
    torch.manual_seed(0)
    cut = Cutouts(16, 6)
    image = torch.rand(1, 3, 32, 32)
    first, params = cut(image)
    assert torch.equal(cut.replay(image, params), first)
    other = torch.rand(1, 3, 32, 32)
    replayed = cut.replay(other, params)
    again = cut.replay(other, params)
    assert torch.equal(replayed, again) and not torch.equal(replayed, first)


def test_wide_cuts_show_the_whole_image() -> None:
    torch.manual_seed(0)
    image = torch.zeros(1, 3, 32, 64)
    image[..., :8] = 1.0  # a white band on the far left edge
    cut = Cutouts(32, 10, zoom_fraction=0.0, noise=0.0)
    cuts, _ = cut(image)
    assert (cuts.amax(dim=(1, 2, 3)) > 0.8).all()  # every wide cut still contains the band


def test_without_augmentation_cuts_are_plain_crops() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 48, 48)
    cuts, _ = Cutouts(16, 5, augment=False)(image)
    assert cuts.shape == (5, 3, 16, 16)
    assert 0 <= cuts.min() and cuts.max() <= 1  # no noise, no fill, no jitter
