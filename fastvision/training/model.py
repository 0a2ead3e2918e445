"""Keras-style compile / fit / evaluate / predict, mixed into nn.Module.

    model = nn.Sequential(...)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=5, validation_split=0.1, seed=0)
    loss, acc = model.evaluate(x_test, y_test)
    logits = model.predict(x_test)
    model.save_weights("m.safetensors"); model.load_weights("m.safetensors")

Every Module has these methods (TrainingMixin is a base class of Module); a plain PyTorch
loop (optimizer.zero_grad(); loss.backward(); optimizer.step()) works the same without them.

Keras semantics:
- loss "sparse_categorical_crossentropy" takes LOGITS (Keras's from_logits=True): the model
  ends with a Linear layer, no softmax, and the loss applies log-softmax itself (the fused
  softmax_cross_entropy kernel). Integer labels (N,). A callable / Module loss is called as
  loss(logits_tensor, labels) and must return a scalar Tensor.
- optimizer strings build Keras's defaults: "adam" -> Adam(lr=1e-3, eps=1e-7,
  eps_convention="keras"), "adamw" -> AdamW(same, weight_decay=0.004), "sgd" -> SGD(lr=0.01),
  "rmsprop" -> RMSprop(lr=1e-3, alpha=0.9, eps=1e-7; eps added to sqrt(v) as torch, where
  Keras 3 adds it under the root: indistinguishable but for tiny v). Or pass an Optimizer.
- metrics: "accuracy" (also "acc", "sparse_categorical_accuracy": argmax of the logits
  against the labels) or callables f(y_true, logits) -> float, logged under f.__name__.
- logged values are running means over the epoch, weighted by batch size; validation values
  get the "val_" prefix. validation_split takes the LAST fraction of x / y, before shuffling.
- x: float32 or uint8 arrays, samples on axis 0 (NCHW images). uint8 batches are converted
  to float32 as they are (no /255: scale first if the model expects [0, 1]); other float
  dtypes are converted to float32 once.
- shuffle draws a new permutation each epoch from np.random.default_rng(seed), or, with
  seed=None, from the fastvision.manual_seed generator: under a seed, fit is reproducible.

Per-step Python work is small: batches are gathered with np.take into buffers allocated
once per fit, losses and metric counts are accumulated as Python floats, and the console
line is redrawn at most every 50 ms.
"""

import numpy as np

from fastvision.training._helpers import (Batcher, as_x, as_y, positive_int, resolve_loss,
                                          resolve_metrics, resolve_optimizer)


class TrainingMixin:
    """compile / fit / evaluate / predict / save_weights / load_weights for nn.Module."""

    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=None):
        opt = resolve_optimizer(optimizer, list(self.parameters()))
        self.__dict__["_compiled"] = dict(optimizer=opt, loss=resolve_loss(loss),
                                          metrics=resolve_metrics(metrics))
        return self

    def _get_compiled(self, fn):
        c = self.__dict__.get("_compiled")
        if c is None:
            raise RuntimeError(f"{fn}: call model.compile(optimizer, loss, metrics) first")
        return c

    # --- one batch ---
    def _batch_stats(self, out, yb, loss_value, n, sums):
        """Add this batch's loss and metric totals (times n) to sums."""
        sums[0] += loss_value * n
        for i, (_, fn) in enumerate(self._compiled["metrics"], 1):
            if fn is None:
                sums[i] += float(np.count_nonzero(out.argmax(axis=1) == yb))
            else:
                sums[i] += float(fn(yb, out)) * n

    def _logs(self, sums, seen, prefix=""):
        names = ["loss"] + [name for name, _ in self._compiled["metrics"]]
        return {prefix + k: s / seen for k, s in zip(names, sums)}

    # --- fit ---
    def fit(self, x, y, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, seed=None,
            initial_epoch=0):
        from fastvision import _random
        from fastvision.tensor import Tensor
        from fastvision.training.callbacks import History
        from fastvision.training.progress import Progbar, format_logs, format_rate

        c = self._get_compiled("fit")
        x = as_x("fit", x)
        y = as_y("fit", y, len(x))
        batch_size = positive_int("fit", "batch_size", batch_size)
        epochs = positive_int("fit", "epochs", epochs)
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        val = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            xv = as_x("fit", validation_data[0])
            val = (xv, as_y("fit", validation_data[1], len(xv)))
        elif validation_split > 0:
            split = int(len(x) * (1.0 - validation_split))
            if split == 0 or split == len(x):
                raise ValueError(f"fit: validation_split={validation_split} leaves an empty "
                                 f"training or validation set of {len(x)} samples")
            val, x, y = (x[split:], y[split:]), x[:split], y[:split]
        if len(x) == 0:
            raise ValueError("fit: x is empty")
        rng = np.random.default_rng(seed) if seed is not None else _random.get_generator()
        history = History()
        cbs = list(callbacks or []) + [history]  # last, as Keras: it sees the final logs
        for cb in cbs:
            cb.set_model(self)
        self.stop_training = False
        n = len(x)
        steps = -(-n // batch_size)
        batcher = Batcher(x, y, batch_size)
        opt, loss_fn = c["optimizer"], c["loss"]
        nsums = 1 + len(c["metrics"])
        for cb in cbs:
            cb.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch, {})
            self.train()
            order = rng.permutation(n) if shuffle else None
            if verbose == 1:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = Progbar(steps, verbose)
            sums, seen = [0.0] * nsums, 0
            for step in range(steps):
                start = step * batch_size
                stop = min(start + batch_size, n)
                xb, yb = (batcher.take(order[start:stop]) if shuffle
                          else batcher.slice(start, stop))
                opt.zero_grad()
                out = self(Tensor(xb))
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
                self._batch_stats(out.data, yb, float(loss.data), stop - start, sums)
                seen += stop - start
                logs = self._logs(sums, seen)
                for cb in cbs:
                    cb.on_train_batch_end(step, logs)
                bar.update(step + 1, logs)
            epoch_time = bar.elapsed()
            if val is not None:
                logs.update(self._evaluate(val[0], val[1], batch_size, "val_"))
            bar.finish(logs)
            if verbose == 2:
                print(f"Epoch {epoch + 1}/{epochs} - {epoch_time:.1f}s - "
                      f"{format_rate(epoch_time / steps)} - {format_logs(logs)}", flush=True)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end({})
        self.history = history
        return history

    # --- evaluate / predict ---
    def _evaluate(self, x, y, batch_size, prefix="", bar=None):
        from fastvision.autograd import no_grad
        from fastvision.tensor import Tensor

        c = self._compiled
        was_training = self.training
        self.eval()
        batcher = Batcher(x, y, batch_size)
        sums, seen = [0.0] * (1 + len(c["metrics"])), 0
        try:
            with no_grad():
                for step, start in enumerate(range(0, len(x), batch_size)):
                    stop = min(start + batch_size, len(x))
                    xb, yb = batcher.slice(start, stop)
                    out = self(Tensor(xb))
                    loss = float(c["loss"](out, yb).data)
                    self._batch_stats(out.data, yb, loss, stop - start, sums)
                    seen += stop - start
                    if bar is not None:
                        bar.update(step + 1, self._logs(sums, seen, prefix))
        finally:
            self.train(was_training)
        return self._logs(sums, seen, prefix)

    def evaluate(self, x, y, batch_size=32, verbose=1):
        """[loss, metric...] over (x, y) (the loss alone when compiled without metrics)."""
        from fastvision.training.progress import Progbar

        self._get_compiled("evaluate")
        x = as_x("evaluate", x)
        y = as_y("evaluate", y, len(x))
        batch_size = positive_int("evaluate", "batch_size", batch_size)
        if len(x) == 0:
            raise ValueError("evaluate: x is empty")
        bar = Progbar(-(-len(x) // batch_size), verbose)
        logs = self._evaluate(x, y, batch_size, bar=bar)
        bar.finish(logs)
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32):
        """The model's outputs (logits for a classifier) as one float32 ndarray."""
        from fastvision.autograd import no_grad
        from fastvision.tensor import Tensor

        x = as_x("predict", x)
        batch_size = positive_int("predict", "batch_size", batch_size)
        batcher, result = Batcher(x, None, batch_size), None
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for start in range(0, len(x), batch_size):
                    stop = min(start + batch_size, len(x))
                    out = np.asarray(self(Tensor(batcher.slice(start, stop)[0])))
                    if result is None:
                        result = np.empty((len(x),) + out.shape[1:], np.float32)
                    result[start:stop] = out
        finally:
            self.train(was_training)
        return result if result is not None else np.empty((0,), np.float32)

    # --- weights ---
    def save_weights(self, path):
        """Write state_dict() to `path` as safetensors."""
        from fastvision import serialization
        serialization.save(self.state_dict(), path)

    def load_weights(self, path, strict=True):
        """Load a safetensors file written by save_weights (or fastvision.save / safetensors
        for the same architecture). Raises (FileNotFoundError, WeightsFileError, or
        nn.StateDictError for another architecture) without changing the model."""
        from fastvision import serialization
        return self.load_state_dict(serialization.load(path), strict=strict)
