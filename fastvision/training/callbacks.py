"""Keras-style callbacks for Module.fit: History, EarlyStopping, ModelCheckpoint, CSVLogger.

A callback gets `set_model(model)` and then on_train_begin(logs), on_epoch_begin(epoch, logs),
on_train_batch_end(batch, logs), on_epoch_end(epoch, logs), on_train_end(logs); `epoch` is
0-based and `logs` maps "loss", "accuracy", "val_loss", ... to floats (the epoch means).
Setting `model.stop_training = True` ends fit after the current epoch.
"""

import csv
import os
import warnings

import numpy as np


class Callback:
    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class History(Callback):
    """Records the epoch logs: `history["loss"][e]` is epoch e's mean training loss."""

    def __init__(self):
        super().__init__()
        self.history, self.epoch = {}, []

    def on_train_begin(self, logs=None):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _monitor_op(name, monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{name}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"
    return (np.less, np.inf) if mode == "min" else (np.greater, -np.inf)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs
    (Keras 3's EarlyStopping).

    mode "auto" maximises metrics whose name contains "acc" and minimises the rest. With
    restore_best_weights the weights of the best epoch are put back when fit ends (whether
    it stopped early or ran out of epochs, as Keras 3). `baseline`: the patience counter is
    only reset by values that also beat the baseline. Epochs before start_from_epoch are
    not monitored.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self.monitor_op, self._init_best = _monitor_op("EarlyStopping", monitor, mode)
        # min_delta is a magnitude; its sign follows the direction of improvement
        self.min_delta = abs(min_delta) if self.monitor_op is np.greater else -abs(min_delta)

    def _is_improvement(self, current, reference):
        return bool(self.monitor_op(current - self.min_delta, reference))

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = self._init_best, None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"EarlyStopping: monitor {self.monitor!r} is not available; "
                          f"available: {sorted(logs or {})}", RuntimeWarning, stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.state_dict(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the weights (safetensors) after each epoch to `filepath`, which may contain
    format fields: "ckpt-{epoch:02d}-{val_loss:.3f}.safetensors" (epoch is 1-based, as
    Keras). save_best_only keeps only files whose `monitor` improved on the best so far."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 mode="auto"):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose, self.save_best_only = monitor, verbose, save_best_only
        self.monitor_op, self.best = _monitor_op("ModelCheckpoint", monitor, mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: can save best model only with "
                              f"{self.monitor!r} available, skipping", RuntimeWarning,
                              stacklevel=2)
                return
            if not self.monitor_op(current, self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        self.model.save_weights(path)


class CSVLogger(Callback):
    """One CSV row per epoch: "epoch" (0-based, as Keras) then the log keys, sorted."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys, self._file, self._writer = None, None, None

    def on_train_begin(self, logs=None):
        has_header = (self.append and os.path.isfile(self.filename)
                      and os.path.getsize(self.filename) > 0)
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._has_header, self.keys = has_header, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep)
            if not self._has_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self.keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
