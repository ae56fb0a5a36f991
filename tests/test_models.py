"""Contract tests for every registered model architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_train import hcr_cache, single_thread  # noqa: F401  (fixtures)
from torch import nn

from hcr.errors import HcrError, UnknownNameError
from hcr.models import count_parameters, create_model, describe_model, list_models
from hcr.models.cnn import pool_then_relu

pytestmark = pytest.mark.usefixtures("single_thread")

MODELS = list_models("classify")  # the CRNN has its own contract tests (test_crnn.py)


def test_registry_has_the_documented_models() -> None:
    assert {"seed-cnn", "hcr-cnn"} <= set(MODELS)
    assert MODELS == sorted(MODELS)
    for name in MODELS:
        assert describe_model(name)


@pytest.mark.parametrize("n", [10, 62])
@pytest.mark.parametrize("name", MODELS)
def test_output_shape_finite_and_softmax(name: str, n: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, n)
    x = torch.rand(4, 1, 28, 28)
    for mode in (model.train, model.eval):
        mode()
        with torch.no_grad():
            logits = model(x)
        assert logits.shape == (4, n)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()
        p = torch.softmax(logits, dim=1)
        assert torch.allclose(p.sum(1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_batch_of_one_in_eval_mode(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 10).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        one = model(x[:1])
        three = model(x)
    assert one.shape == (1, 10) and torch.isfinite(one).all()
    # eval mode: a sample's output does not depend on the rest of the batch
    assert torch.allclose(one, three[:1], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_channels_last_input_gives_the_same_output(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 62).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        plain = model(x.contiguous())
        cl = model(x.contiguous(memory_format=torch.channels_last))
        cl_model = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain, cl, atol=1e-5)
    assert torch.allclose(plain, cl_model, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_initial_weights(name: str) -> None:
    """Two instances from the same seed are identical (initialisation uses the torch RNG only)."""
    torch.manual_seed(123)
    a = create_model(name, 10)
    torch.manual_seed(123)
    b = create_model(name, 10)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


@pytest.mark.parametrize("n", [10, 62])
def test_seed_cnn_is_the_classic_architecture(n: int) -> None:
    layers = _leaves(create_model("seed-cnn", n))
    types = [type(m) for m in layers]
    assert types == [
        nn.Conv2d, nn.MaxPool2d, nn.ReLU,  # pooling before ReLU: the same function (below)
        nn.Conv2d, nn.MaxPool2d, nn.ReLU,
        nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear,
    ]
    c1, c2, fc1, fc2 = layers[0], layers[3], layers[7], layers[10]
    assert (c1.in_channels, c1.out_channels, c1.kernel_size, c1.padding) == (1, 32, (3, 3), (0, 0))
    assert (c2.in_channels, c2.out_channels, c2.kernel_size, c2.padding) == (32, 64, (3, 3), (0, 0))
    for pool in (layers[1], layers[4]):
        assert pool.kernel_size == 2
    assert (fc1.in_features, fc1.out_features) == (1600, 128)
    assert (fc2.in_features, fc2.out_features) == (128, n)
    assert layers[9].p == 0.5
    expected = (1 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (1600 * 128 + 128) + (128 * n + n)
    assert count_parameters(create_model("seed-cnn", n)) == expected


@pytest.mark.parametrize("ceil", [False, True])
def test_pooling_before_relu_computes_the_same_outputs_and_gradients(ceil: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 8, 3)
    classic = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2, ceil_mode=ceil))
    fast = nn.Sequential(*pool_then_relu([conv, nn.ReLU()], nn.MaxPool2d(2, ceil_mode=ceil)))
    assert [type(m) for m in fast] == [nn.Conv2d, nn.MaxPool2d, nn.ReLU]
    x = torch.randn(4, 1, 15, 15)
    grads = []
    for net in (classic, fast):
        conv.zero_grad()
        y = net(x)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        grads.append((y.detach(), conv.weight.grad.clone(), conv.bias.grad.clone()))
    for a, b in zip(*grads):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="end in a ReLU"):
        pool_then_relu([conv], nn.MaxPool2d(2))


def test_hcr_cnn_has_batchnorm_and_a_bounded_size() -> None:
    model = create_model("hcr-cnn", 62)
    assert any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    assert count_parameters(model) <= 3_000_000
    # and it is the larger of the two
    assert count_parameters(model) > count_parameters(create_model("seed-cnn", 62))


@pytest.fixture(scope="module")
def one_batch(hcr_cache) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: F811
    """32 real digits (through the shared preprocessing) with random labels."""
    from hcr.data.digits import DigitsSource
    from hcr.preprocess import PreprocessSpec
    from hcr.train.classify import prepare

    samples = DigitsSource().load("train").subset(np.arange(32))
    x, _, blank = prepare(samples, PreprocessSpec(), cache=False, progress=False)
    assert not blank.any()
    y = np.random.default_rng(0).integers(0, 10, size=32)
    return torch.from_numpy(x[:, None].copy()), torch.from_numpy(y)


@pytest.mark.parametrize("name", MODELS)
def test_overfits_one_batch_of_random_labels(name: str, one_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = one_batch
    torch.manual_seed(0)
    model = create_model(name, 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    acc, step = 0.0, 0
    for step in range(1, 151):
        model.train()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            model.eval()
            with torch.no_grad():
                acc = float((model(x).argmax(1) == y).float().mean())
            if acc >= 0.95:
                break
    assert acc >= 0.95, f"{name}: only {acc:.2f} train accuracy on one batch after {step} steps"


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        create_model("nope", 10)
    err = info.value
    assert isinstance(err, HcrError) and isinstance(err, KeyError)
    msg = str(err)
    assert "nope" in msg
    for name in MODELS:
        assert name in msg
    assert not msg.startswith(("'", '"'))  # not KeyError's quoted repr
