"""``--model``: registered specs parse as before; FILE.py:Class and pkg.module:Class name a user's class."""

import pytest

from fedgossip.errors import ConfigError
from fedgossip.settings.model_spec import UserModelSpec, is_user_model, parse_model_spec
from fedgossip.specs import Spec


@pytest.mark.parametrize("text", ["mlp", "mlp:hidden=128", "cnn:channels=8,hidden=16", "resnet8"])
def test_registered_models_parse_as_plugin_specs(text):
    assert isinstance(parse_model_spec(text), Spec)
    assert not is_user_model(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mine.py:Net", UserModelSpec("mine.py", "Net")),
        ("nets/mine.py:Net:width=64", UserModelSpec("nets/mine.py", "Net", {"width": "64"})),
        ("/a.b/m.py:Net:w=64,depth=2", UserModelSpec("/a.b/m.py", "Net", {"w": "64", "depth": "2"})),
        ("pkg.sub:Net", UserModelSpec("pkg.sub", "Net")),
        ("pkg.sub:Net:sizes=1,2", UserModelSpec("pkg.sub", "Net", {"sizes": "1,2"})),  # a comma continues
    ],
)
def test_user_models_parse_into_target_class_and_arguments(text, expected):
    assert parse_model_spec(text) == expected


def test_a_user_model_spec_prints_back_as_it_parses():
    text = "nets/mine.py:Net:width=64,depth=2"
    assert str(parse_model_spec(text)) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mine.py", "expected FILE.py:ClassName"),
        ("mine.py:", "expected FILE.py:ClassName"),
        ("mine.py:Net-1", "'Net-1' is not a Python class name"),
        ("mine.py:Net:width", "expected key=value after 'Net:'"),
        ("mine.py:Net:width=1,width=2", "parameter 'width' given twice"),
        ("pkg.sub", "expected FILE.py:ClassName or package.module:ClassName"),
        ("mine:Net", "got 'Net'; for your own class write mine.py:Net \\(a file\\) or package.mine:Net"),
        ("mlp:hidden", "got 'hidden'$"),  # a parameter without its value: no hint about classes
    ],
)
def test_malformed_user_model_specs_say_the_form(text, says):
    with pytest.raises(ConfigError, match=says):
        parse_model_spec(text)
