"""python -m fastvision train|evaluate, and examples/mnist_cnn.py, on tiny MNIST subsets."""

import importlib.util
import os
import subprocess
import sys

import pytest

import fastvision as fv
from fastvision import cli
from test_mnist import real_mnist_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir():
    d = real_mnist_dir()
    if d is None:
        pytest.skip("real MNIST files not present")
    return d


@pytest.fixture(autouse=True)
def keep_threads():
    before = fv.get_num_threads()
    yield
    fv.set_num_threads(before)


def test_help_via_python_m():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "fastvision", "--help"], capture_output=True,
                       text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0
    assert "usage: python -m fastvision" in r.stdout and "{train,evaluate}" in r.stdout


@pytest.mark.parametrize("sub", ["train", "evaluate"])
def test_subcommand_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--data" in out and ("--epochs" in out if sub == "train" else "--model" in out)


@pytest.mark.parametrize("argv, match", [
    ([], "required"),
    (["fit"], "invalid choice"),
    (["train", "--epochs", "0"], "--epochs: must be >= 1"),
    (["train", "--batch-size", "x"], "must be an integer"),
    (["train", "--optimizer", "adagrad"], "invalid choice"),
    (["train", "--lr", "-1"], "--lr: must be > 0"),
    (["evaluate"], "--model"),
])
def test_bad_arguments_exit_2(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_missing_data_dir_exits_1_with_one_line(tmp_path, capsys):
    assert cli.main(["train", "--data", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("python -m fastvision train: error: data directory")
    assert cli.main(["train", "--data", str(tmp_path)]) == 1  # exists, but no MNIST files
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no MNIST files" in err and "--download" in err


def test_train_then_evaluate_tiny_subset(data_dir, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    rc = cli.main(["train", "--data", data_dir, "--limit", "512", "--test-limit", "200",
                   "--epochs", "1", "--seed", "0", "--threads", "2", "--out", str(out)])
    assert rc == 0 and out.is_file()
    text = capsys.readouterr().out
    assert text.startswith("Epoch 1/1 - ") and "saved " + str(out) in text
    acc_train = float(text.split("accuracy ")[-1].split(";")[0])
    assert cli.main(["evaluate", "--model", str(out), "--data", data_dir,
                     "--test-limit", "200"]) == 0
    text = capsys.readouterr().out
    assert f"accuracy {acc_train:.4f} (200 samples)" in text
    assert "precision" in text and "weighted avg" in text
    # optimizers other than adam run too
    assert cli.main(["train", "--data", os.path.dirname(data_dir), "--limit", "64",
                     "--test-limit", "64", "--optimizer", "sgd", "--lr", "0.05",
                     "--verbose", "0", "--out", str(tmp_path / "sgd.safetensors")]) == 0


def test_train_is_reproducible_under_seed_and_reads_fastvision_data(data_dir, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("FASTVISION_DATA", os.path.dirname(data_dir))  # <root>/mnist/*.gz
    files = [tmp_path / f"run{i}.safetensors" for i in range(2)]
    for f in files:
        assert cli.main(["train", "--limit", "256", "--test-limit", "64", "--seed", "3",
                         "--batch-size", "32", "--verbose", "0", "--out", str(f)]) == 0
    a, b = fv.load(files[0]), fv.load(files[1])
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_evaluate_bad_model_file_exits_1(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert cli.main(["evaluate", "--model", str(bad), "--data", data_dir]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid safetensors file" in err
    other = tmp_path / "other.safetensors"
    fv.save({"w": fv.zeros(3).data}, other)
    assert cli.main(["evaluate", "--model", str(other), "--data", data_dir]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Missing key" in err
    assert cli.main(["evaluate", "--model", str(tmp_path / "none"), "--data", data_dir]) == 1
    assert "not found" in capsys.readouterr().err


def test_example_mnist_cnn_runs(data_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "mnist_cnn_example", os.path.join(REPO, "examples", "mnist_cnn.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    save = tmp_path / "ex.safetensors"
    assert mod.main(["--epochs", "1", "--limit", "2000", "--data", os.path.dirname(data_dir),
                     "--seed", "0", "--threads", "2", "--save", str(save)]) == 0
    out = capsys.readouterr().out
    assert "Epoch 1/1 - " in out and "test accuracy: " in out and "wall time: " in out
    assert "macro avg" in out and save.is_file()
    acc = float(out.split("test accuracy: ")[1].split()[0])
    assert acc > 0.7  # observed 0.77 after one epoch on 2000 images


def test_bench_train_mnist_quick_run(data_dir, tmp_path):
    """bench/train_mnist.py end to end on a tiny subset (timings are never asserted)."""
    spec = importlib.util.spec_from_file_location(
        "train_mnist_bench", os.path.join(REPO, "bench", "train_mnist.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "train_mnist.md"
    argv = ["--epochs", "2", "--limit", "256", "--test-limit", "128", "--data", data_dir,
            "--out", str(out)]
    try:
        import torch  # noqa: F401
    except ImportError:
        argv.append("--no-torch")
    assert mod.main(argv) == 0
    text = out.read_text()
    assert "| fastvision | " in text and "outside kernels" in text
    assert "TensorFlow/Keras" in text
    assert "conv2d_backward" in text
    assert "time / fastvision (median of rounds)" in text and "Epochs are interleaved" in text
    row = next(line for line in text.splitlines() if line.startswith("| fastvision | "))
    assert len(row.split("|")) == 2 + 2 + 8  # two epochs, then the 8 summary columns
    # the ops wrappers are removed again after the run
    assert not hasattr(fv.ops.conv2d, "__wrapped__")
    assert not hasattr(fv._C.conv2d, "__wrapped__")
