"""Command line: python -m fastvision train|evaluate (the MNIST CNN of fastvision.models).

    python -m fastvision train --data ~/data --epochs 5 --out model.safetensors
    python -m fastvision evaluate --model model.safetensors --data ~/data

--data is a directory holding the four MNIST .gz files, or one with an "mnist" subdirectory
holding them (default: $FASTVISION_DATA, then ~/.cache/fastvision). Files are downloaded
only with --download. Bad arguments exit with status 2 (argparse); a missing data directory,
a bad data or model file exit with status 1 and a one-line "error:" message on stderr.
"""

import argparse
import os
import sys
import time

import numpy as np

PROG = "python -m fastvision"
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def find_mnist_dir(data):
    """The directory holding the MNIST files for --data (None: the default location)."""
    from fastvision.datasets import mnist
    if data is None:
        env = os.environ.get("FASTVISION_DATA")
        candidates = [env, os.path.join(env, "mnist")] if env else [mnist.default_dir()]
    else:
        data = os.path.expanduser(data)
        if not os.path.isdir(data):
            raise CLIError(f"data directory {data} not found")
        candidates = [data, os.path.join(data, "mnist")]
    for d in candidates:
        if all(os.path.isfile(os.path.join(d, f)) for f in mnist.FILES):
            return d
    return None


def load_mnist(data, download=False, limit=None, test_limit=None):
    """(x_train, y_train), (x_test, y_test): float32 (N, 1, 28, 28) in [0, 1], int64 labels."""
    from fastvision.datasets import mnist
    directory = find_mnist_dir(data)
    if directory is None:
        where = data if data is not None else (os.environ.get("FASTVISION_DATA")
                                               or mnist.default_dir())
        if not download:
            raise CLIError(f"no MNIST files ({', '.join(mnist.FILES)}) in {where} or "
                           f"{os.path.join(where, 'mnist')}; pass --download to fetch them")
        directory = os.path.join(where, "mnist") if data is not None else None
    try:
        (xt, yt), (xs, ys) = mnist.load_data(directory, download_missing=download)
    except (OSError, ValueError) as e:
        raise CLIError(str(e).replace("\n", " ")) from None
    xt, yt = xt[:limit], yt[:limit]
    xs, ys = xs[:test_limit], ys[:test_limit]
    scale = lambda a: (a.astype(np.float32) / 255)[:, None]  # noqa: E731  NCHW in [0, 1]
    return (scale(xt), yt), (scale(xs), ys)


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Train or evaluate the MNIST CNN "
                                "(fastvision.models.mnist_cnn) with fastvision's kernels.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,evaluate}")

    def common(sp):
        sp.add_argument("--data", help="directory with the MNIST .gz files (or an 'mnist' "
                        "subdirectory); default $FASTVISION_DATA or ~/.cache/fastvision")
        sp.add_argument("--download", action="store_true", help="download missing MNIST files")
        sp.add_argument("--batch-size", type=positive, default=64, help="default 64")
        sp.add_argument("--threads", type=positive, help="kernel threads (default: all)")
        sp.add_argument("--limit", type=positive, help="use only the first N training samples")
        sp.add_argument("--test-limit", type=positive,
                        help="use only the first N test samples")

    t = sub.add_parser("train", help="train the MNIST CNN and save its weights")
    common(t)
    t.add_argument("--epochs", type=positive, default=5, help="default 5")
    t.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam")
    t.add_argument("--lr", type=positive_float,
                   help="learning rate (default: adam 1e-3, sgd 1e-2, rmsprop 1e-3)")
    t.add_argument("--seed", type=int, help="seed for init and shuffling (reproducible run)")
    t.add_argument("--out", default="model.safetensors", help="weights file to write")
    t.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)

    e = sub.add_parser("evaluate", help="evaluate saved weights on the MNIST test set")
    common(e)
    e.add_argument("--model", required=True, help="weights file (.safetensors)")
    return p


def _optimizer(model, name, lr):
    from fastvision import optim
    lr = DEFAULT_LR[name] if lr is None else lr
    params = list(model.parameters())
    if name == "adam":
        return optim.Adam(params, lr=lr, eps=1e-7, eps_convention="keras")
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    return optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)


def cmd_train(args):
    import fastvision as fv
    from fastvision.models import mnist_cnn
    (x, y), (xs, ys) = load_mnist(args.data, args.download, args.limit, args.test_limit)
    if args.seed is not None:
        fv.manual_seed(args.seed)
    model = mnist_cnn()
    model.compile(_optimizer(model, args.optimizer, args.lr),
                  "sparse_categorical_crossentropy", ["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=args.verbose,
              seed=args.seed)
    elapsed = time.perf_counter() - t0
    loss, acc = model.evaluate(xs, ys, batch_size=256, verbose=0)
    try:
        fv.save(model.state_dict(), args.out, metadata={"model": "mnist_cnn"})
    except OSError as e:
        raise CLIError(f"cannot write {args.out}: {e}") from None
    print(f"trained {len(x)} samples x {args.epochs} epochs in {elapsed:.1f}s; "
          f"test loss {loss:.4f} accuracy {acc:.4f}; saved {args.out}")


def cmd_evaluate(args):
    from fastvision import metrics
    from fastvision.models import mnist_cnn
    model = mnist_cnn()
    try:
        model.load_weights(args.model)
    except (OSError, ValueError) as e:  # missing, not safetensors, another architecture
        msg = " ".join(str(e).split())
        raise CLIError(f"cannot load {args.model}: {msg}") from None
    _, (xs, ys) = load_mnist(args.data, args.download, 1, args.test_limit)  # test set only
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    loss, acc = model.evaluate(xs, ys, batch_size=args.batch_size, verbose=0)
    pred = model.predict(xs, batch_size=args.batch_size).argmax(axis=1)
    print(f"test loss {loss:.4f} accuracy {acc:.4f} ({len(xs)} samples)")
    print(metrics.classification_report(ys, pred, digits=4, zero_division=0))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            import fastvision as fv
            fv.set_num_threads(args.threads)
        (cmd_train if args.command == "train" else cmd_evaluate)(args)
    except CLIError as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0
