"""safetensors weights: fastvision.save / load, Module.save_weights / load_weights; bad files
raise clear errors and leave the model unchanged."""

import os

import numpy as np
import pytest

import fastvision as fv
from fastvision import nn
from fastvision.models import mnist_cnn


def small_model(seed=0, hidden=8):
    fv.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, hidden),
                         nn.ReLU(), nn.Linear(hidden, 3))


def assert_same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes()


def test_save_load_weights_round_trip(tmp_path):
    m = small_model(0)
    path = tmp_path / "m.safetensors"
    m.save_weights(path)
    other = small_model(1)
    res = other.load_weights(str(path))
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert_same_state(other.state_dict(), m.state_dict())
    x = np.random.default_rng(0).random((2, 1, 4, 4), dtype=np.float32)
    np.testing.assert_array_equal(other.predict(x), m.predict(x))
    assert [f for f in os.listdir(tmp_path)] == ["m.safetensors"]  # no temp file left


def test_fv_save_load_is_plain_safetensors(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file
    sd = mnist_cnn().state_dict()
    path = str(tmp_path / "cnn.safetensors")
    fv.save(sd, path)
    loaded = fv.load(path)
    assert_same_state(loaded, sd)  # the state_dict's order is kept
    raw = load_file(path)
    assert set(raw) == set(sd) and raw["0.weight"].shape == (32, 1, 3, 3)
    with safe_open(path, framework="numpy") as f:
        assert f.metadata()["format"] == "fastvision"
    with open(path, "rb") as f:
        assert b"pickle" not in f.read(200)


def test_save_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        fv.save([1, 2], tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="keys must be str"):
        fv.save({1: np.zeros(2, np.float32)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="path must be"):
        fv.save({}, 3)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all",
                                     b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json"])
def test_corrupt_file_raises_and_leaves_model_unchanged(tmp_path, content):
    m = small_model()
    before = m.state_dict()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(fv.WeightsFileError, match="is not a valid safetensors file"):
        m.load_weights(path)
    assert_same_state(m.state_dict(), before)


def test_truncated_file_raises_and_leaves_model_unchanged(tmp_path):
    m = small_model()
    good = tmp_path / "good.safetensors"
    small_model(3).save_weights(good)
    data = good.read_bytes()
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(data[:-10])
    before = m.state_dict()
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        m.load_weights(bad)
    assert_same_state(m.state_dict(), before)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        small_model().load_weights(tmp_path / "nope.safetensors")


def test_other_architecture_raises_and_leaves_model_unchanged(tmp_path):
    path = tmp_path / "wide.safetensors"
    small_model(hidden=16).save_weights(path)
    m = small_model(hidden=8)
    before = m.state_dict()
    with pytest.raises(nn.StateDictError, match=r"size mismatch for '3.weight'"):
        m.load_weights(path)
    assert_same_state(m.state_dict(), before)
    with pytest.raises(nn.StateDictError, match="size mismatch"):  # strict=False too
        m.load_weights(path, strict=False)
    assert_same_state(m.state_dict(), before)
    # an entirely different model: missing and unexpected keys
    with pytest.raises(ValueError, match="Missing key"):
        mnist_cnn().load_weights(path)


def test_non_strict_loads_the_matching_subset(tmp_path):
    sd = small_model(4).state_dict()
    sd["extra.weight"] = np.ones(3, np.float32)
    del sd["5.bias"]
    path = tmp_path / "partial.safetensors"
    fv.save(sd, path)
    m = small_model(0)
    with pytest.raises(ValueError, match="Unexpected key"):
        m.load_weights(path)
    res = m.load_weights(path, strict=False)
    assert res.missing_keys == ["5.bias"] and res.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(m.state_dict()["0.weight"], sd["0.weight"])


def test_torch_safetensors_file_loads_and_matches_torch():
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    import tempfile
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                             torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "torch.safetensors")
        st_torch.save_file(tm.state_dict(), path)
        m = small_model()
        m.load_weights(path)
    x = np.random.default_rng(1).random((5, 1, 4, 4), dtype=np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(m.predict(x), expected, rtol=1e-5, atol=1e-6)
