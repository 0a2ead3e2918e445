"""Keras-like console progress for fit / evaluate.

verbose=1: one line rewritten in place with "\\r" while an epoch runs, e.g.
    "37/94 [===========>..................] - ETA: 2s - 31ms/step - loss: 0.4127 - accuracy: 0.87"
  and when it ends (validation values appended), followed by a newline:
    "94/94 [==============================] - 3s 31ms/step - loss: 0.2301 - accuracy: 0.9312"
  Redraws are throttled to one per `interval` seconds (the last step is always drawn), so a
  fast step does not pay for terminal output.
verbose=2: nothing while the epoch runs; fit prints one summary line per epoch:
    "Epoch 1/5 - 3.1s - 31ms/step - loss: 0.2301 - accuracy: 0.9312 - val_loss: ..."
verbose=0: silent.
"""

import sys
import time


def format_value(v):
    """Keras's number format: 4 decimals, scientific below 1e-3."""
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def format_logs(logs):
    return " - ".join(f"{k}: {format_value(v)}" for k, v in logs.items())


def format_duration(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def format_rate(seconds_per_step):
    if seconds_per_step >= 1:
        return f"{seconds_per_step:.0f}s/step"
    if seconds_per_step >= 1e-3:
        return f"{seconds_per_step * 1e3:.0f}ms/step"
    return f"{seconds_per_step * 1e6:.0f}us/step"


class Progbar:
    def __init__(self, target, verbose=1, width=30, interval=0.05, stream=None):
        self.target, self.verbose, self.width, self.interval = target, verbose, width, interval
        self.stream = stream if stream is not None else sys.stdout
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._prev_len = 0
        self._end = None
        self._digits = len(str(target))

    def _bar(self, step):
        filled = int(self.width * step / self.target) if self.target else self.width
        if step >= self.target:
            return "=" * self.width
        return "=" * max(filled - 1, 0) + ">" + "." * (self.width - max(filled, 1))

    def update(self, step, logs):
        """Redraw at step `step` (1-based) of target; cheap no-op unless verbose=1 and the
        redraw interval has passed or this is the last step."""
        now = time.perf_counter()
        if step >= self.target and self._end is None:
            self._end = now  # the epoch's time excludes the validation pass after it
        if self.verbose != 1:
            return
        if step < self.target and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        elapsed = (self._end if self._end is not None else now) - self.start
        per_step = elapsed / max(step, 1)
        head = f"\r{step:>{self._digits}}/{self.target} [{self._bar(step)}]"
        if step < self.target:
            eta = per_step * (self.target - step)
            line = f"{head} - ETA: {format_duration(eta)} - {format_rate(per_step)}"
        else:
            line = f"{head} - {format_duration(elapsed)} {format_rate(per_step)}"
        if logs:
            line += " - " + format_logs(logs)
        # blank out the rest of a longer previous line
        pad = max(self._prev_len - len(line), 0)
        self._prev_len = len(line)
        self.stream.write(line + " " * pad)
        self.stream.flush()

    def finish(self, logs):
        """Final redraw with the complete logs (validation included) and a newline."""
        if self.verbose != 1:
            return
        self._last_draw = 0.0
        self.update(self.target, logs)
        self.stream.write("\n")
        self.stream.flush()

    def elapsed(self):
        """Seconds from construction to the last step (or to now, before it)."""
        return (self._end if self._end is not None else time.perf_counter()) - self.start
