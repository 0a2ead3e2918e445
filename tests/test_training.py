"""Keras-style training API (fastvision.training): fit / evaluate / predict on real MNIST,
History, callbacks, progress output, reproducibility, argument errors."""

import csv
import re

import numpy as np
import pytest

import fastvision as fv
from fastvision import nn, optim
from fastvision.datasets import mnist
from fastvision.models import mnist_cnn
from fastvision.training import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from test_mnist import real_mnist_dir


@pytest.fixture(scope="module")
def small_mnist():
    d = real_mnist_dir()
    if d is None:
        pytest.skip("real MNIST files not present")
    (xt, yt), (xs, ys) = mnist.load_data(d, download_missing=False)
    f = lambda a: (a.astype(np.float32) / 255)[:, None]  # noqa: E731
    return (f(xt[:2000]), yt[:2000]), (f(xs[:500]), ys[:500])


def toy_data(n=96, seed=0):
    """A separable 3-class problem on (n, 1, 4, 4) images: the class sets one row bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int64)
    x = rng.normal(0, 0.1, (n, 1, 4, 4)).astype(np.float32)
    x[np.arange(n), 0, y, :] += 1.0
    return x, y


def toy_model(seed=0):
    fv.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def compiled_toy(seed=0, **kw):
    m = toy_model(seed)
    m.compile(kw.pop("optimizer", "adam"), "sparse_categorical_crossentropy", ["accuracy"])
    return m


# ---------------------------------------------------------------- real data

def test_fit_evaluate_predict_on_mnist_subset(small_mnist):
    (x, y), (xs, ys) = small_mnist
    fv.manual_seed(0)
    model = mnist_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_data=(xs, ys), seed=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in h.history.values())
    assert h.history["loss"][1] < h.history["loss"][0]
    loss, acc = model.evaluate(xs, ys, batch_size=100, verbose=0)
    assert acc > 0.8  # observed 0.87-0.89 (seeds 0..2); 2 epochs of 2000 samples
    assert loss == pytest.approx(h.history["val_loss"][-1], rel=1e-5)
    logits = model.predict(xs, batch_size=77)
    assert logits.shape == (500, 10) and logits.dtype == np.float32
    assert np.mean(logits.argmax(1) == ys) == pytest.approx(acc)
    assert model.training  # evaluate / predict restore the mode


def test_uint8_input_equals_float_cast():
    x, y = toy_data()
    xu = np.clip(np.round((x + 0.5) * 100), 0, 255).astype(np.uint8)
    runs = []
    for data in (xu, xu.astype(np.float32)):
        m = compiled_toy()
        h = m.fit(data, y, batch_size=16, epochs=2, verbose=0, seed=3)
        runs.append((h.history, m.state_dict(), m.predict(data)))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_200_step_run_is_bitwise_reproducible_under_seed(threads):
    x, y = toy_data(n=1600, seed=1)
    results = []
    for nthreads in (1, 2):  # and independent of the thread count
        threads(nthreads)
        fv.manual_seed(7)
        m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))
        nn.init.keras_(m)
        m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        h = m.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=11)  # 2 x 100 steps
        results.append((h.history, m.state_dict()))
    assert results[0][0] == results[1][0]
    for k, v in results[0][1].items():
        assert v.tobytes() == results[1][1][k].tobytes()


def test_validation_split_takes_the_last_samples_and_shuffle_false_is_ordered():
    x, y = toy_data(n=100)
    seen = []

    class Spy(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
    m = compiled_toy()
    h = m.fit(x, y, batch_size=30, epochs=1, verbose=0, validation_split=0.2, shuffle=False,
              callbacks=[Spy()])
    assert seen == [0, 1, 2]  # 80 training samples in batches of 30
    ref = compiled_toy()
    ref.fit(x[:80], y[:80], batch_size=30, epochs=1, verbose=0, shuffle=False)
    val_loss, val_acc = ref.evaluate(x[80:], y[80:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-6)
    assert h.history["val_accuracy"][0] == pytest.approx(val_acc)


def test_evaluate_without_metrics_returns_a_scalar_and_custom_loss_and_metric():
    x, y = toy_data()
    m = toy_model()
    m.compile(optim.SGD(m.parameters(), lr=0.1), loss=nn.CrossEntropyLoss())
    assert isinstance(m.evaluate(x, y, verbose=0), float)
    assert list(m.children())[-1].__class__ is nn.Linear  # the loss is not registered
    assert list(m.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]

    def top2(y_true, logits):
        return np.mean((np.argsort(logits, 1)[:, -2:] == y_true[:, None]).any(1))
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["acc", top2])
    h = m.fit(x, y, epochs=1, verbose=0, seed=0)
    assert list(h.history) == ["loss", "acc", "top2"]
    assert len(m.evaluate(x, y, verbose=0)) == 3


def test_plain_pytorch_style_loop_still_works():
    x, y = toy_data()
    m = toy_model()
    opt = optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(fv.Tensor(x)), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.2


@pytest.mark.parametrize("call, exc, match", [
    (lambda m, x, y: toy_model().fit(x, y), RuntimeError, "call model.compile"),
    (lambda m, x, y: m.compile("adagrad"), ValueError, "optimizer must be"),
    (lambda m, x, y: m.compile("adam", "mse"), ValueError, "loss must be"),
    (lambda m, x, y: m.compile("adam", metrics=["auc"]), ValueError, "unknown metric"),
    (lambda m, x, y: m.fit(x, y.astype(np.float32)), TypeError, "integer class labels"),
    (lambda m, x, y: m.fit(x, y[:-1]), ValueError, r"y must have shape \(96,\)"),
    (lambda m, x, y: m.fit(x.astype(np.complex64), y), TypeError, "float32 or uint8"),
    (lambda m, x, y: m.fit(x, y, validation_split=1.0), ValueError, "validation_split"),
    (lambda m, x, y: m.fit(x, y, batch_size=0), ValueError, "batch_size must be"),
    (lambda m, x, y: m.fit(x, y, verbose=3), ValueError, "verbose must be"),
])
def test_argument_errors_change_nothing(call, exc, match):
    x, y = toy_data()
    m = compiled_toy()
    before = m.state_dict()
    with pytest.raises(exc, match=match):
        call(m, x, y)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


# ---------------------------------------------------------------- callbacks

class Score(Callback):
    """Puts a scripted value under logs["score"] and snapshots the weights each epoch."""

    def __init__(self, values):
        super().__init__()
        self.values, self.snapshots = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.snapshots.append(self.model.state_dict())


def test_early_stopping_stops_after_patience():
    x, y = toy_data()
    m = compiled_toy()
    es = EarlyStopping(monitor="score", patience=2)
    h = m.fit(x, y, epochs=10, verbose=0, callbacks=[Score([1, .5, .6, .7, .1, 0, 0, 0, 0, 0]),
                                                     es])
    assert len(h.history["loss"]) == 4 and es.stopped_epoch == 3
    assert h.history["score"] == [1, .5, .6, .7]


def test_early_stopping_restores_best_weights_and_min_delta_mode_max():
    x, y = toy_data()
    m = compiled_toy()
    score = Score([1.0, 0.5, 2.0, 3.0, 4.0])
    m.fit(x, y, epochs=5, verbose=0, seed=0,
          callbacks=[score, EarlyStopping("score", patience=2, restore_best_weights=True)])
    best, last = score.snapshots[1], score.snapshots[3]
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, best[k])
        assert not np.array_equal(v, last[k])
    # restored at the end of fit also when it did not stop early (Keras 3)
    m3 = compiled_toy()
    score = Score([1.0, 0.5, 0.7])
    m3.fit(x, y, epochs=3, verbose=0, seed=0,
           callbacks=[score, EarlyStopping("score", patience=5, restore_best_weights=True)])
    for k, v in m3.state_dict().items():
        np.testing.assert_array_equal(v, score.snapshots[1][k])
    # baseline: values that do not beat it do not reset the patience counter
    for baseline, n_epochs in ((1.5, 3), (None, 5)):
        h = compiled_toy().fit(x, y, epochs=6, verbose=0, callbacks=[
            Score([5.0, 4.0, 4.0, 4.0, 4.0, 4.0]),
            EarlyStopping("score", patience=3, baseline=baseline)])
        assert len(h.history["loss"]) == n_epochs
    # mode max with min_delta: +0.05 gains are not improvements, so it stops at epoch 2
    m2 = compiled_toy()
    h = m2.fit(x, y, epochs=5, verbose=0, callbacks=[
        Score([0.5, 0.55, 0.6, 0.9, 1.0]),
        EarlyStopping("score", patience=2, min_delta=0.1, mode="max")])
    assert len(h.history["loss"]) == 3


def test_model_checkpoint_writes_loadable_files(tmp_path):
    x, y = toy_data()
    m = compiled_toy()
    pattern = str(tmp_path / "w-{epoch:02d}-{score:.1f}.safetensors")
    best = str(tmp_path / "best.safetensors")
    score = Score([3.0, 1.0, 2.0])
    m.fit(x, y, epochs=3, verbose=0, callbacks=[
        score, ModelCheckpoint(pattern, monitor="score"),
        ModelCheckpoint(best, monitor="score", save_best_only=True)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.safetensors", "w-01-3.0.safetensors", "w-02-1.0.safetensors",
                     "w-03-2.0.safetensors"]
    fresh = toy_model(seed=5)
    fresh.load_weights(tmp_path / "w-03-2.0.safetensors")
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, m.state_dict()[k])
    fresh.load_weights(best)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, score.snapshots[1][k])


def test_csv_logger(tmp_path):
    x, y = toy_data()
    m = compiled_toy()
    path = tmp_path / "log.csv"
    h = m.fit(x, y, epochs=3, verbose=0, validation_data=(x[:20], y[:20]),
              callbacks=[CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for e, r in enumerate(rows[1:]):
        assert float(r[2]) == pytest.approx(h.history["loss"][e], rel=1e-12)
        assert float(r[4]) == pytest.approx(h.history["val_loss"][e], rel=1e-12)
    m.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert len(list(csv.reader(open(path)))) == 5  # no second header


# ---------------------------------------------------------------- console output

NUM = r"\d+\.\d{4}(e[-+]\d+)?"


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = toy_data()
    compiled_toy().fit(x, y, epochs=2, verbose=2, validation_split=0.25)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for e, line in enumerate(lines, 1):
        assert re.fullmatch(rf"Epoch {e}/2 - \d+\.\ds - \d+(us|ms|s)/step - loss: {NUM} - "
                            rf"accuracy: {NUM} - val_loss: {NUM} - val_accuracy: {NUM}", line)


def test_verbose_1_progress_bar_and_verbose_0_silent(capsys):
    x, y = toy_data()
    m = compiled_toy()
    m.fit(x, y, batch_size=32, epochs=1, verbose=1, validation_data=(x, y))
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n") and out.endswith("\n") and "\r" in out
    final = out.rstrip("\n").split("\r")[-1].rstrip()
    assert re.fullmatch(rf"3/3 \[={{30}}\] - \d+s \d+(us|ms|s)/step - loss: {NUM} - "
                        rf"accuracy: {NUM} - val_loss: {NUM} - val_accuracy: {NUM}", final)
    for part in out.split("\r")[1:-1]:  # in-progress redraws
        assert re.match(r"[123]/3 \[[=>.]{30}\] - (ETA: \d+s - \d+(us|ms|s)/step|\d+s)", part)
    m.evaluate(x, y, verbose=1)
    assert capsys.readouterr().out.rstrip("\n").split("\r")[-1].startswith("3/3 [")
    m.fit(x, y, epochs=1, verbose=0)
    m.evaluate(x, y, verbose=0)
    m.predict(x)
    assert capsys.readouterr().out == ""


def test_fit_follows_a_torch_training_loop():
    """fit = the plain torch loop (same init, order, Adam torch convention) up to rounding."""
    torch = pytest.importorskip("torch")
    x, y = toy_data(n=160, seed=2)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                             torch.nn.Linear(16, 3))
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    m.compile(optim.Adam(m.parameters(), lr=1e-2), "sparse_categorical_crossentropy")
    h = m.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=5)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    rng = np.random.default_rng(5)  # fit(seed=5) draws one permutation per epoch from it
    for epoch in range(2):
        order, total = rng.permutation(len(x)), 0.0
        for s in range(0, len(x), 16):
            idx = order[s:s + 16]
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x[idx])),
                                                     torch.from_numpy(y[idx]))
            loss.backward()
            topt.step()
            total += loss.item() * len(idx)
        assert h.history["loss"][epoch] == pytest.approx(total / len(x), rel=1e-4)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(m.state_dict()[k], v.numpy(), rtol=1e-3, atol=1e-4)
