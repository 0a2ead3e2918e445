"""MNIST: load (downloading once if needed) the four canonical IDX .gz files.

    (x_train, y_train), (x_test, y_test) = fastvision.datasets.mnist.load_data()

x_* are uint8 (N, 28, 28) (60000 train, 10000 test), y_* int64 (N,) in 0..9, as
keras.datasets.mnist.load_data returns them (labels widened to int64 for the loss kernels).

Where the files live: `path` if given, else `$FASTVISION_DATA/mnist`, else
`~/.cache/fastvision/mnist`. A missing file is fetched from MIRRORS (tried in order), streamed
to a temp file in the same directory, checked against MD5 (the digest of the DECOMPRESSED
IDX content, so a re-compressed copy is still accepted) and only then renamed into place: a
failed or interrupted download never leaves a file under the canonical name.

Parsing checks the whole IDX header (magic 2051 images / 2049 labels, the dims, payload
length == product of dims, 28x28 images, image count == label count, labels in 0..9); any
problem raises MNISTFormatError (a ValueError) naming the file and what is wrong.
"""

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib

import numpy as np

# Base URLs, tried in order; a file's URL is base + file name. Tests point this at 127.0.0.1.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# MD5 of the decompressed IDX content of each file.
MD5 = {
    TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
    TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
    TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
    TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
}

TIMEOUT = 30.0                  # seconds, per connection attempt / read
MAX_DOWNLOAD = 64 * 1024 * 1024  # the largest file is ~10 MB; anything far bigger is wrong
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
NUM_CLASSES = 10
_CHUNK = 1 << 20


class MNISTFormatError(ValueError):
    """A file is not a valid MNIST IDX .gz file (bad gzip stream, header, size or labels)."""


class MNISTDownloadError(OSError):
    """No mirror delivered a file with the expected content."""


def default_dir() -> str:
    """`$FASTVISION_DATA/mnist` if FASTVISION_DATA is set, else `~/.cache/fastvision/mnist`."""
    root = os.environ.get("FASTVISION_DATA")
    if root:
        return os.path.join(root, "mnist")
    return os.path.join(os.path.expanduser("~"), ".cache", "fastvision", "mnist")


def _md5_of_gzip(path: str) -> str:
    """MD5 of the decompressed content; MNISTFormatError when the gzip stream is bad (the
    caller prefixes the URL, so the temp file's name is left out of the message)."""
    h = hashlib.md5()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise MNISTFormatError(f"not a valid gzip stream ({e})") from None
    return h.hexdigest()


def _fetch(url: str, dest: str) -> None:
    """Stream `url` into the open-able path `dest` (OSError / URLError on failure)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as resp, open(dest, "wb") as out:
        total = 0
        for chunk in iter(lambda: resp.read(_CHUNK), b""):
            total += len(chunk)
            if total > MAX_DOWNLOAD:
                raise OSError(f"more than {MAX_DOWNLOAD} bytes; not an MNIST file")
            out.write(chunk)
        promised = resp.headers.get("Content-Length")
        if promised is not None and promised.isdigit() and int(promised) != total:
            # http.client returns a short body at EOF without raising: check it here
            raise OSError(f"connection closed after {total} of {promised} bytes")


def download(name: str, directory: str) -> str:
    """Fetch `name` into `directory` from the first mirror that delivers the right content.

    Returns the final path. Raises MNISTDownloadError listing what each mirror did wrong.
    """
    if name not in MD5:
        raise ValueError(f"mnist: unknown file {name!r}, expected one of {list(FILES)}")
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, name)
    failures = []
    for base in MIRRORS:
        url = base + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        os.close(fd)
        try:
            _fetch(url, tmp)
            digest = _md5_of_gzip(tmp)
            if digest != MD5[name]:
                raise MNISTFormatError(f"MD5 of the decompressed content is {digest}, "
                                       f"expected {MD5[name]}")
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a data cache may be shared
            os.replace(tmp, final)
            return final
        except (OSError, ValueError, http.client.HTTPException) as e:
            # URLError / HTTPError / timeouts are OSErrors; IncompleteRead (a connection cut
            # short of Content-Length) is an HTTPException; a bad URL is a ValueError
            why = str(e) if isinstance(e, MNISTFormatError) else f"{type(e).__name__}: {e}"
            failures.append(f"{url}: {why}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    tried = "\n  ".join(failures) if failures else "(MIRRORS is empty)"
    raise MNISTDownloadError(f"mnist: could not download {name}:\n  {tried}")


def _read_gzip(path: str) -> bytes:
    name = os.path.basename(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        # wbits=31: gzip container; one call, much faster than streaming through GzipFile.
        d = zlib.decompressobj(31)
        data = d.decompress(raw)
        if d.unused_data:  # a multi-member gzip file: let gzip walk the members
            data = gzip.decompress(raw)
        elif not d.eof:
            raise MNISTFormatError(f"{name}: truncated gzip stream (no end of stream after "
                                   f"{len(raw)} bytes)")
    except (zlib.error, OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise MNISTFormatError(f"{name}: not a valid gzip stream ({e})") from None
    return data


def parse_idx(data: bytes, name: str, magic: int) -> np.ndarray:
    """The uint8 array in IDX bytes `data`; MNISTFormatError on any header or size problem."""
    if len(data) < 4:
        raise MNISTFormatError(f"{name}: {len(data)} bytes, too short for an IDX header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        kind = "images" if magic == IMAGE_MAGIC else "labels"
        raise MNISTFormatError(f"{name}: IDX magic number is {got}, expected {magic} "
                               f"(unsigned-byte {kind})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTFormatError(f"{name}: {len(data)} bytes, too short for a {ndim}-d IDX "
                               f"header ({header} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header
    if payload != expected:
        raise MNISTFormatError(f"{name}: payload is {payload} bytes, but dims {dims} need "
                               f"{expected} (truncated or mis-sized file)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_images(path: str) -> np.ndarray:
    """uint8 (N, 28, 28) from an IDX3 .gz file (a writable copy)."""
    name = os.path.basename(path)
    x = parse_idx(_read_gzip(path), name, IMAGE_MAGIC)
    if x.shape[1:] != (28, 28):
        raise MNISTFormatError(f"{name}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
    return x.copy()


def load_labels(path: str) -> np.ndarray:
    """int64 (N,) in 0..9 from an IDX1 .gz file."""
    name = os.path.basename(path)
    y = parse_idx(_read_gzip(path), name, LABEL_MAGIC)
    if y.size and y.max() >= NUM_CLASSES:
        i = int(np.argmax(y >= NUM_CLASSES))
        raise MNISTFormatError(f"{name}: label[{i}] must be in 0..9, got {int(y[i])}")
    return y.astype(np.int64)


def _load_pair(directory: str, images: str, labels: str):
    x = load_images(os.path.join(directory, images))
    y = load_labels(os.path.join(directory, labels))
    if len(x) != len(y):
        raise MNISTFormatError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    return x, y


def load_data(path=None, *, download_missing=True):
    """((x_train, y_train), (x_test, y_test)): uint8 (N, 28, 28) images, int64 (N,) labels.

    path: directory holding the four .gz files (default: see default_dir()). Missing files
    are downloaded there unless download_missing=False (then FileNotFoundError).
    """
    directory = os.path.expanduser(os.fspath(path)) if path is not None else default_dir()
    for name in FILES:
        if not os.path.isfile(os.path.join(directory, name)):
            if not download_missing:
                raise FileNotFoundError(f"mnist: {os.path.join(directory, name)} not found")
            download(name, directory)
    return (_load_pair(directory, TRAIN_IMAGES, TRAIN_LABELS),
            _load_pair(directory, TEST_IMAGES, TEST_LABELS))
