"""Reference models.

mnist_cnn(): the Keras "simple MNIST convnet" of the TensorFlow tutorial, NCHW:
    Conv2d(1, 32, 3) ReLU MaxPool2d(2) Conv2d(32, 64, 3) ReLU MaxPool2d(2) Conv2d(64, 64, 3)
    ReLU Flatten Linear(576, 64) ReLU Linear(64, 10)
on (N, 1, 28, 28) float32 input, returning logits (N, 10) (no softmax: train it with
loss="sparse_categorical_crossentropy", which takes logits). init="keras" (glorot uniform
weights, zero biases, as Keras's layers) or "torch".
"""

from fastvision import nn


def mnist_cnn(init="keras"):
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(576, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )
    if init == "keras":
        nn.init.keras_(model)
    elif init != "torch":
        raise ValueError(f"mnist_cnn: init must be 'keras' or 'torch', got {init!r}")
    return model
