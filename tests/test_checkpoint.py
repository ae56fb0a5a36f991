"""Model files: round trip for every registered model, tampering, and atomic writes."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import torch

import hcr.checkpoint as ckpt_mod
from hcr.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from hcr.errors import ModelFileError
from hcr.labels import charset
from hcr.modelfile import CHECKPOINT_FORMAT as FORMAT
from hcr.models import create_model, list_models
from hcr.preprocess import PreprocessSpec

SMALL_KWARGS = {"hcr-cnn": {"width": 8, "dropout": 0.2}, "seed-cnn": {"dropout": 0.25}}


def make_checkpoint(name: str = "seed-cnn", seed: int = 0) -> tuple[Checkpoint, torch.nn.Module]:
    torch.manual_seed(seed)
    labels = charset(["digits", "upper"])
    kwargs = SMALL_KWARGS.get(name, {})
    model = create_model(name, len(labels), **kwargs)
    # one training-mode pass so batch-norm running statistics are not their defaults
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 28, 28))
    model.eval()
    ck = Checkpoint(
        model_name=name,
        model_kwargs=dict(kwargs),
        label_map=labels,
        spec=PreprocessSpec(box=18, deskew=True, polarity="dark-on-light"),
        state_dict=model.state_dict(),
        config={"epochs": 3, "lr": 0.01, "data": ["mnist", "emnist-byclass"], "nested": {"seed": seed}},
        metrics={"val_accuracy": 0.875, "per_class": {"A": 0.5}},
        train_state={"epoch": 3, "rng": torch.arange(4)},
    )
    return ck, model


@pytest.fixture(scope="module")
def seed_ckpt() -> Checkpoint:
    return make_checkpoint("seed-cnn")[0]


def test_models_are_registered() -> None:
    assert {"seed-cnn", "hcr-cnn"} <= set(list_models())


@pytest.mark.parametrize("name", list_models("classify"))
def test_round_trip(tmp_path: Path, name: str) -> None:
    ck, model = make_checkpoint(name)
    path = save_checkpoint(ck, tmp_path / "sub" / "model.pt")
    assert path == tmp_path / "sub" / "model.pt" and path.is_file()

    loaded = load_checkpoint(path)
    assert loaded.model_name == name
    assert loaded.model_kwargs == SMALL_KWARGS.get(name, {})
    assert loaded.label_map == ck.label_map
    assert loaded.spec == ck.spec
    assert loaded.config == ck.config
    assert loaded.metrics == ck.metrics
    assert loaded.versions.get("torch") and loaded.versions.get("hcr")
    assert loaded.train_state["epoch"] == 3 and torch.equal(loaded.train_state["rng"], torch.arange(4))
    assert set(loaded.state_dict) == set(model.state_dict())

    rebuilt = loaded.build_model()
    assert not rebuilt.training
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = model(x), rebuilt(x)
    assert got.shape == (5, len(ck.label_map))
    assert torch.equal(expected, got)

    raw = torch.load(path, weights_only=True)  # plain data only: loads without unpickling code
    assert raw["format"] == FORMAT
    assert raw["labels"] == {"symbols": list(ck.label_map.symbols)}
    assert raw["preprocess"] == ck.spec.to_dict()
    assert raw["model"] == {"name": name, "kwargs": SMALL_KWARGS.get(name, {})}


def test_resave_is_stable(tmp_path: Path, seed_ckpt: Checkpoint) -> None:
    a = save_checkpoint(seed_ckpt, tmp_path / "a.pt")
    b = save_checkpoint(load_checkpoint(a), tmp_path / "b.pt")
    la, lb = load_checkpoint(a), load_checkpoint(b)
    assert la.versions == lb.versions  # versions of the original writer are kept
    assert all(torch.equal(la.state_dict[k], lb.state_dict[k]) for k in la.state_dict)


# --------------------------------------------------------------------------- tampering


class Sneaky(collections.OrderedDict):
    """Not a plain type: ``weights_only`` loading refuses to construct it."""


def _tampered(tmp_path: Path, ck: Checkpoint, case: str) -> Path:
    good = save_checkpoint(ck, tmp_path / "good.pt")
    path = tmp_path / f"{case}.pt"
    d = ck.to_dict()
    if case == "truncated":
        raw = good.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif case == "random-bytes":
        path.write_bytes(bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8)))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a model\n")
    elif case == "bare-state-dict":
        torch.save(ck.state_dict, path)
    elif case == "pickled-object":
        d["config"] = Sneaky(epochs=3)
        torch.save(d, path)
    elif case == "pickled-object-top-level":
        torch.save(Sneaky(d), path)
    elif case == "nan-weight":
        key = next(k for k, v in d["state_dict"].items() if v.is_floating_point())
        d["state_dict"][key] = d["state_dict"][key].clone()
        d["state_dict"][key].view(-1)[3] = float("nan")
        torch.save(d, path)
    elif case == "inf-weight":
        key = next(k for k, v in d["state_dict"].items() if v.is_floating_point())
        d["state_dict"][key] = torch.full_like(d["state_dict"][key], float("-inf"))
        torch.save(d, path)
    elif case == "wrong-format":
        d["format"] = "keras-h5"
        torch.save(d, path)
    elif case == "newer-format":
        d["format_version"] = 99
        torch.save(d, path)
    elif case == "non-tensor-weight":
        d["state_dict"]["features.0.weight"] = [[0.0]]
        torch.save(d, path)
    elif case == "missing-state-dict":
        del d["state_dict"]
        torch.save(d, path)
    elif case == "bad-spec":
        d["preprocess"] = {**d["preprocess"], "box": 99}
        torch.save(d, path)
    elif case == "duplicate-labels":
        d["labels"] = {"symbols": ["A", "A"]}
        torch.save(d, path)
    elif case == "a-list":
        torch.save([1, 2, 3], path)
    else:  # pragma: no cover
        raise AssertionError(case)
    return path


LOAD_CASES = [
    "truncated", "random-bytes", "empty", "text", "bare-state-dict", "pickled-object", "pickled-object-top-level",
    "nan-weight", "inf-weight", "wrong-format", "newer-format", "non-tensor-weight", "missing-state-dict",
    "bad-spec", "duplicate-labels", "a-list",
]


@pytest.mark.parametrize("case", LOAD_CASES)
def test_tampered_files_raise_model_file_error(tmp_path: Path, seed_ckpt: Checkpoint, case: str) -> None:
    path = _tampered(tmp_path, seed_ckpt, case)
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.pt", tmp_path):
        with pytest.raises(ModelFileError) as err:
            load_checkpoint(path)
        assert str(path) in str(err.value)


def _edit_and_save(tmp_path: Path, ck: Checkpoint, edit: str) -> Path:
    d = ck.to_dict()
    sd = d["state_dict"]
    if edit == "wrong-shape":
        sd["classifier.1.weight"] = torch.zeros(64, sd["classifier.1.weight"].shape[1])
    elif edit == "missing-tensor":
        del sd["classifier.4.bias"]
    elif edit == "extra-tensor":
        sd["classifier.9.weight"] = torch.zeros(3)
    elif edit == "labels-do-not-fit":
        d["labels"] = {"symbols": list("0123")}  # 36 outputs in the weights, 4 labels
    elif edit == "unknown-model":
        d["model"] = {"name": "resnet-9000", "kwargs": {}}
    elif edit == "bad-kwargs":
        d["model"] = {"name": "seed-cnn", "kwargs": {"depth": 50}}
    else:  # pragma: no cover
        raise AssertionError(edit)
    path = tmp_path / f"{edit}.pt"
    torch.save(d, path)
    return path


@pytest.mark.parametrize("edit", ["wrong-shape", "missing-tensor", "extra-tensor", "labels-do-not-fit"])
def test_weights_that_do_not_fit_raise_model_file_error(tmp_path: Path, seed_ckpt: Checkpoint, edit: str) -> None:
    path = _edit_and_save(tmp_path, seed_ckpt, edit)
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(path).build_model()
    assert "seed-cnn" in str(err.value)


@pytest.mark.parametrize("edit", ["wrong-shape", "labels-do-not-fit"])
def test_weights_that_do_not_fit_name_the_file(tmp_path: Path, seed_ckpt: Checkpoint, edit: str) -> None:
    path = _edit_and_save(tmp_path, seed_ckpt, edit)
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(path).build_model()
    assert str(path) in str(err.value)


@pytest.mark.parametrize("edit", ["unknown-model", "bad-kwargs"])
def test_bad_model_entry_raises_model_file_error(tmp_path: Path, seed_ckpt: Checkpoint, edit: str) -> None:
    path = _edit_and_save(tmp_path, seed_ckpt, edit)
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(path).build_model()
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "key,value",
    [("format_version", "one"), ("format_version", None), ("config", "abc"), ("metrics", 5), ("model", {"name": "seed-cnn", "kwargs": [1]})],
    ids=["version-text", "version-none", "config-str", "metrics-int", "kwargs-list"],
)
def test_malformed_metadata_raises_model_file_error(tmp_path: Path, seed_ckpt: Checkpoint, key: str, value: object) -> None:
    d = seed_ckpt.to_dict()
    d[key] = value
    path = tmp_path / "meta.pt"
    torch.save(d, path)
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------- atomic writes


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("exc", [Interrupted, KeyboardInterrupt])
def test_interrupted_save_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]) -> None:
    old, _ = make_checkpoint("seed-cnn", seed=0)
    new, _ = make_checkpoint("seed-cnn", seed=1)
    path = save_checkpoint(old, tmp_path / "model.pt")
    before = path.read_bytes()

    def broken_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        f.write(b"PK\x03\x04 half a file")  # type: ignore[attr-defined]
        raise exc("disk unplugged")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(exc):
        save_checkpoint(new, path)
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temporary files left
    assert path.read_bytes() == before
    loaded = load_checkpoint(path)
    key = "features.0.weight"
    assert torch.equal(loaded.state_dict[key], old.state_dict[key])
    assert not torch.equal(loaded.state_dict[key], new.state_dict[key])


def test_interrupted_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_ckpt: Checkpoint) -> None:
    def broken_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        f.write(b"junk")  # type: ignore[attr-defined]
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(seed_ckpt, tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [512, 64])
def test_a_spec_that_does_not_fit_the_network_is_refused_at_load(tmp_path: Path, seed_ckpt: Checkpoint, size: int) -> None:
    d = seed_ckpt.to_dict()
    d["preprocess"] = {**d["preprocess"], "size": size, "box": size - 8}
    path = tmp_path / f"spec-{size}.pt"
    torch.save(d, path)
    with pytest.raises(ModelFileError, match=rf"spec \(input size {size}x{size}\) does not fit the network 'seed-cnn'") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_models_pass_the_load_probe() -> None:
    from hcr.pretrained import list_pretrained, pretrained_path

    for m in list_pretrained():
        load_checkpoint(pretrained_path(m.name))
