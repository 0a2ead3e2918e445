"""The Keras MNIST convnet (TensorFlow's "Convolutional Neural Network" tutorial on MNIST),
ported to fastvision. It reads like the Keras original; images are NCHW (N, 1, 28, 28)
instead of Keras's NHWC (N, 28, 28, 1), and Keras's default initialisation (glorot uniform
weights, zero biases) is applied with nn.init.keras_.

Keras original, for comparison:
    model = models.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10)])
    model.compile(optimizer="adam",
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

The last layer outputs logits: "sparse_categorical_crossentropy" in fastvision always takes
logits (Keras's from_logits=True) and applies the softmax itself.

    python examples/mnist_cnn.py --data ~/data --epochs 5 --seed 0 --save mnist.safetensors
"""

import argparse
import os
import sys
import time

import numpy as np

import fastvision as fv
from fastvision import metrics, nn
from fastvision.cli import CLIError, find_mnist_dir
from fastvision.datasets import mnist


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=None, help="makes the run reproducible")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    p.add_argument("--data", default=os.environ.get("FASTVISION_DATA"),
                   help="directory with the MNIST .gz files or an 'mnist' subdirectory "
                        "(default: $FASTVISION_DATA; downloaded if missing)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training images")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    p.add_argument("--save", metavar="PATH", help="write the trained weights (safetensors)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        fv.set_num_threads(args.threads)
    if args.seed is not None:
        fv.manual_seed(args.seed)  # initial weights and the shuffling are drawn from it
    t_start = time.perf_counter()

    # Load MNIST: uint8 (N, 28, 28) images, int64 labels.
    data_dir = None
    if args.data:
        try:
            data_dir = find_mnist_dir(args.data) or os.path.join(args.data, "mnist")
        except CLIError as e:
            sys.exit(f"error: {e}")
    (train_images, train_labels), (test_images, test_labels) = mnist.load_data(data_dir)
    if args.limit:
        train_images, train_labels = train_images[:args.limit], train_labels[:args.limit]

    # Normalize pixel values to be between 0 and 1, and add the channel axis (NCHW).
    train_images = (train_images.astype(np.float32) / 255.0)[:, None, :, :]
    test_images = (test_images.astype(np.float32) / 255.0)[:, None, :, :]

    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),      # (N, 32, 26, 26)
        nn.MaxPool2d(2),                     # (N, 32, 13, 13)
        nn.Conv2d(32, 64, 3), nn.ReLU(),     # (N, 64, 11, 11)
        nn.MaxPool2d(2),                     # (N, 64, 5, 5)
        nn.Conv2d(64, 64, 3), nn.ReLU(),     # (N, 64, 3, 3)
        nn.Flatten(),                        # (N, 576)
        nn.Linear(576, 64), nn.ReLU(),
        nn.Linear(64, 10),                   # logits
    )
    nn.init.keras_(model)
    print(model)

    model.compile(optimizer="adam",
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    t_fit = time.perf_counter()
    history = model.fit(train_images, train_labels, epochs=args.epochs,
                        batch_size=args.batch_size, verbose=args.verbose, seed=args.seed)
    fit_time = time.perf_counter() - t_fit

    print("\nepoch   loss     accuracy")
    for e, (loss, acc) in enumerate(zip(history.history["loss"], history.history["accuracy"])):
        print(f"{e + 1:5d}   {loss:.4f}   {acc:.4f}")

    test_loss, test_acc = model.evaluate(test_images, test_labels, batch_size=256, verbose=0)
    print(f"\ntest loss: {test_loss:.4f}   test accuracy: {test_acc:.4f}")

    predictions = model.predict(test_images, batch_size=256).argmax(axis=1)
    print("\nper-class precision / recall / F1 on the test set:")
    print(metrics.classification_report(test_labels, predictions, digits=4, zero_division=0))

    if args.save:
        model.save_weights(args.save)
        print(f"weights saved to {args.save}")
    total = time.perf_counter() - t_start
    print(f"wall time: {total:.1f}s (fit {fit_time:.1f}s, {fit_time / args.epochs:.1f}s/epoch, "
          f"{fv.get_num_threads()} threads, isa {fv.isa()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
