"""Recipe files: every field checked against its type, coerced where nothing is lost, and
every wrong field named on its own line (issue 17)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from hcr.cli import main
from hcr.config import SequenceConfig, TrainConfig, load_config
from hcr.errors import HcrError

RECIPES = [TrainConfig, SequenceConfig]


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_field_refuses_a_wrong_type_and_names_it(recipe: type) -> None:
    for f in dataclasses.fields(recipe):
        with pytest.raises(HcrError) as err:
            recipe.from_dict({f.name: [[1]]})  # a list of lists fits no recipe field
        assert str(err.value).startswith(f"recipe option {f.name!r}: expected"), str(err.value)


@pytest.mark.parametrize("recipe", RECIPES)
def test_none_only_where_a_field_is_optional(recipe: type) -> None:
    hints = typing.get_type_hints(recipe)
    for f in dataclasses.fields(recipe):
        optional = type(None) in typing.get_args(hints[f.name])
        if optional:
            assert getattr(recipe.from_dict({f.name: None}), f.name) is None
        else:
            with pytest.raises(HcrError, match=f"recipe option {f.name!r}"):
                recipe.from_dict({f.name: None})


def test_values_yaml_reads_as_text_are_coerced() -> None:
    c = TrainConfig.from_dict({"lr": "1e-3", "epochs": "2", "batch_size": 64.0, "weight_decay": 0, "augment": {"rotate": 5}})
    assert (c.lr, c.epochs, c.batch_size, c.weight_decay, c.augment) == (0.001, 2, 64, 0.0, {"rotate": 5})
    assert isinstance(c.epochs, int) and isinstance(c.lr, float)
    assert SequenceConfig.from_dict({"augment": "no"}).augment is False


def test_wrong_values_are_each_one_line() -> None:
    with pytest.raises(HcrError) as err:
        TrainConfig.from_dict({"lr": "fast", "epochs": True, "batch_size": 64.5, "data_options": 3, "augment": 5, "seed": "x"})
    lines = str(err.value).splitlines()
    assert len(lines) == 6
    assert "recipe option 'lr': expected a number (such as 0.001 or 1e-3), got 'fast'" in lines
    assert "recipe option 'batch_size': expected a whole number, got 64.5" in lines
    assert "recipe option 'epochs': expected a whole number, got True" in lines
    with pytest.raises(HcrError, match="finite"):
        TrainConfig.from_dict({"lr": "nan"})


def test_a_recipe_file_with_yaml_strings_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: digits\nepochs: 2.5\nlr: 1e-3\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "recipe option 'epochs': expected a whole number, got 2.5" in err and "Traceback" not in err
    good = tmp_path / "good.yaml"
    good.write_text("data: digits\nepochs: '1'\nlr: 1e-3\nmax_train_samples: 200\nbatch_size: 64\n")
    cfg = load_config(good)
    assert isinstance(cfg, TrainConfig) and (cfg.epochs, cfg.lr) == (1, 0.001)


def test_the_shipped_recipes_load() -> None:
    for path in sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml")):
        load_config(path).validate()
