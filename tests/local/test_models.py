"""Model factories: registered through entry points, seeded construction, shapes, no BatchNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedgossip.errors import ConfigError
from fedgossip.local.models import MODELS, build_model
from fedgossip.local.models.mlp import Mlp

torch.set_num_threads(1)

DIGITS = (1, 8, 8)
ALL = ["logreg", "mlp", "cnn", "resnet8"]
FLAT_OK = ["logreg", "mlp"]


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_builtins_arrive_through_entry_points():
    assert set(ALL) <= set(MODELS.available())
    assert MODELS.provider("resnet8") == "fedgossip"


@pytest.mark.parametrize("name", ALL)
def test_every_model_classifies_digits(name):
    model = build_model(name, DIGITS, 10, seed=0)
    assert model(torch.zeros(5, *DIGITS)).shape == (5, 10)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("name", FLAT_OK)
def test_dense_models_take_flat_features(name):
    assert build_model(name, (60,), 10, seed=0)(torch.zeros(5, 60)).shape == (5, 10)


@pytest.mark.parametrize("name", ["cnn", "resnet8"])
def test_image_models_refuse_flat_features_and_suggest_another(name):
    with pytest.raises(ConfigError, match=r"\[channels, height, width\].*\[60\].*--model mlp"):
        build_model(name, (60,), 10, seed=0)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", ["cnn", "resnet8"])
def test_image_models_take_mnist_and_cifar_sizes(name, shape):
    assert build_model(name, shape, 10, seed=0)(torch.zeros(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_gives_identical_weights_and_another_seed_different_ones(name):
    a, b, c = (build_model(name, DIGITS, 10, seed=s).state_dict() for s in (7, 7, 8))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_building_leaves_the_global_generator_where_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model("mlp", DIGITS, 10, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_parameter_counts_follow_the_architecture():
    assert _numel(build_model("logreg", DIGITS, 10, seed=0)) == 64 * 10 + 10
    # 60→7, 7→7, 7→10
    assert _numel(build_model("mlp:hidden=7,layers=2", (60,), 10, seed=0)) == (60 * 7 + 7) + (7 * 7 + 7) + (
        7 * 10 + 10
    )
    # conv 1→32, conv 32→64, two 2x2 poolings leave 2x2, dense 256→128, output 128→10
    cnn = (1 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 2 * 2 * 128 + 128) + (128 * 10 + 10)
    assert _numel(build_model("cnn", DIGITS, 10, seed=0)) == cnn


@pytest.mark.parametrize("spec", ["logreg", "mlp", "mlp:hidden=7,layers=3", "cnn", "resnet8"])
@pytest.mark.parametrize("shape", [DIGITS, (3, 32, 32)])
def test_parameter_count_without_building_equals_the_built_model(spec, shape):
    factory = MODELS.create(spec)
    assert factory.parameter_count(shape, 10) == _numel(build_model(factory, shape, 10, seed=0))


def test_parameter_count_of_an_oversized_model_is_immediate_or_a_config_error():
    # arithmetic for the mlp: no tensor of 10^30 units is ever made
    assert MODELS.create("mlp:hidden=" + "1" + "0" * 30).parameter_count(DIGITS, 10) > 10**31
    with pytest.raises(ConfigError, match=r"cannot be built: .*; choose a smaller model"):
        MODELS.create("cnn:channels=1000000000").parameter_count(DIGITS, 10)


def test_resnet8_has_groupnorm_and_no_batchnorm_or_buffers():
    model = build_model("resnet8", (3, 32, 32), 10, seed=0)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    assert list(model.buffers()) == []  # nothing that gossip would fail to average


def test_resnet8_has_eight_weighted_layers_besides_shortcuts():
    model = build_model("resnet8:width=4", DIGITS, 10, seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 8
    assert linears[0].in_features == 16  # 4·width channels in the last stage


def test_resnet8_width_need_not_be_a_multiple_of_the_group_count():
    assert build_model("resnet8:width=3", DIGITS, 10, seed=0)(torch.zeros(2, *DIGITS)).shape == (2, 10)


def test_cnn_refuses_images_too_small_to_pool_twice():
    with pytest.raises(ConfigError, match="at least 4x4"):
        build_model("cnn", (1, 3, 3), 10, seed=0)


def test_invalid_parameters_are_refused_from_a_spec_and_from_code():
    with pytest.raises(ConfigError, match=r"hidden=.*must be >= 1.*layers=.*must be >= 1"):
        MODELS.create("mlp:hidden=0,layers=0")
    with pytest.raises(ConfigError, match="hidden"):
        Mlp(hidden=0)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown model 'vgg'.*cnn.*logreg.*mlp.*resnet8"):
        build_model("vgg", DIGITS, 10, seed=0)


def test_fewer_than_two_classes_is_refused():
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_model("logreg", DIGITS, 1, seed=0)
