"""fastvision.datasets.mnist: the real files (when present), IDX validation, and the download
path against a local http.server on 127.0.0.1 (nothing else on the network is touched)."""

import functools
import gzip
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from fastvision.datasets import mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def real_mnist_dir():
    """$FASTVISION_TEST_MNIST, else <repo>/../shared/datasets/mnist (or the same path from a
    further ancestor: a git worktree may sit one level deeper); None when absent."""
    env = os.environ.get("FASTVISION_TEST_MNIST")
    if env:
        candidates = [env]
    else:
        parents, d = [], os.path.dirname(REPO)
        for _ in range(3):
            parents.append(d)
            d = os.path.dirname(d)
        candidates = [os.path.join(p, "shared", "datasets", "mnist") for p in parents]
    for d in candidates:
        if all(os.path.isfile(os.path.join(d, f)) for f in mnist.FILES):
            return d
    return None


# ---------------------------------------------------------------- the real data set

@pytest.fixture(scope="module")
def real():
    d = real_mnist_dir()
    if d is None:
        pytest.skip("real MNIST files not found: set FASTVISION_TEST_MNIST or put the four "
                    "IDX .gz files in <repo>/../shared/datasets/mnist")
    return mnist.load_data(d, download_missing=False)


def test_real_shapes_dtypes(real):
    (xtr, ytr), (xte, yte) = real
    assert xtr.shape == (60000, 28, 28) and xtr.dtype == np.uint8
    assert xte.shape == (10000, 28, 28) and xte.dtype == np.uint8
    assert ytr.shape == (60000,) and ytr.dtype == np.int64
    assert yte.shape == (10000,) and yte.dtype == np.int64
    assert xtr.flags.writeable and xtr.flags.c_contiguous


def test_real_label_counts_and_checksums(real):
    (xtr, ytr), (xte, yte) = real
    assert np.bincount(ytr).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                                         5949]
    assert np.bincount(yte).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ytr[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yte[:5].tolist() == [7, 2, 1, 0, 4]
    assert int(xtr.sum(dtype=np.int64)) == 1567298545
    assert int(xte.sum(dtype=np.int64)) == 264923200
    assert xtr.min() == 0 and xtr.max() == 255
    # border pixels are (almost) always background
    assert xtr[:, 0, :].mean() < 1.0


def test_real_files_match_md5_table():
    d = real_mnist_dir()
    if d is None:
        pytest.skip("real MNIST files not found")
    for name in mnist.FILES:
        with gzip.open(os.path.join(d, name), "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == mnist.MD5[name], name


# ---------------------------------------------------------------- synthetic IDX files

def idx_bytes(arr, magic):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return head + arr.tobytes()


def synthetic(n_train=5, n_test=3, seed=0):
    """{file name: raw IDX bytes} of a tiny valid MNIST, and the arrays it holds."""
    r = np.random.default_rng(seed)
    arrays = {
        mnist.TRAIN_IMAGES: r.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        mnist.TRAIN_LABELS: r.integers(0, 10, n_train).astype(np.uint8),
        mnist.TEST_IMAGES: r.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        mnist.TEST_LABELS: r.integers(0, 10, n_test).astype(np.uint8),
    }
    raw = {k: idx_bytes(v, mnist.IMAGE_MAGIC if v.ndim == 3 else mnist.LABEL_MAGIC)
           for k, v in arrays.items()}
    return raw, arrays


def write_files(directory, raw):
    os.makedirs(directory, exist_ok=True)
    for name, data in raw.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(gzip.compress(data))


def check_arrays(loaded, arrays):
    (xtr, ytr), (xte, yte) = loaded
    np.testing.assert_array_equal(xtr, arrays[mnist.TRAIN_IMAGES])
    np.testing.assert_array_equal(ytr, arrays[mnist.TRAIN_LABELS])
    np.testing.assert_array_equal(xte, arrays[mnist.TEST_IMAGES])
    np.testing.assert_array_equal(yte, arrays[mnist.TEST_LABELS])
    assert ytr.dtype == np.int64 and xtr.dtype == np.uint8


def test_load_local_files(tmp_path, monkeypatch):
    raw, arrays = synthetic()
    write_files(tmp_path, raw)
    monkeypatch.setattr(mnist, "MIRRORS", [])  # present files must not be downloaded
    check_arrays(mnist.load_data(tmp_path), arrays)
    check_arrays(mnist.load_data(str(tmp_path)), arrays)


def test_default_dirs(tmp_path, monkeypatch):
    raw, arrays = synthetic()
    monkeypatch.setattr(mnist, "MIRRORS", [])
    write_files(tmp_path / "data" / "mnist", raw)
    monkeypatch.setenv("FASTVISION_DATA", str(tmp_path / "data"))
    assert mnist.default_dir() == str(tmp_path / "data" / "mnist")
    check_arrays(mnist.load_data(), arrays)
    monkeypatch.delenv("FASTVISION_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist.default_dir() == str(tmp_path / "home" / ".cache" / "fastvision" / "mnist")


def test_missing_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        mnist.load_data(tmp_path, download_missing=False)


def corrupt_case(tmp_path, name, data, gz=True):
    raw, _ = synthetic()
    write_files(tmp_path, raw)
    with open(os.path.join(tmp_path, name), "wb") as f:
        f.write(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"\x00\x00\x08\x01" + d[4:], r"magic number is 2049, expected 2051"),
    (lambda d: d[:-1], r"payload is 3919 bytes, but dims \(5, 28, 28\) need 3920"),
    (lambda d: d + b"\x00", r"payload is 3921 bytes"),
    (lambda d: d[:10], r"too short for a 3-d IDX header"),
    (lambda d: d[:2], r"too short for an IDX header"),
    (lambda d: idx_bytes(np.zeros((5, 27, 28)), 2051), r"images are 27x28, expected 28x28"),
])
def test_bad_image_file(tmp_path, mutate, message):
    raw, _ = synthetic()
    corrupt_case(tmp_path, mnist.TRAIN_IMAGES, mutate(raw[mnist.TRAIN_IMAGES]))
    with pytest.raises(mnist.MNISTFormatError, match="train-images-idx3-ubyte.gz: .*" + message):
        mnist.load_data(tmp_path, download_missing=False)


def test_bad_labels(tmp_path):
    corrupt_case(tmp_path, mnist.TEST_LABELS, idx_bytes(np.array([1, 2, 12]), 2049))
    with pytest.raises(mnist.MNISTFormatError,
                       match=r"t10k-labels-idx1-ubyte.gz: label\[2\] must be in 0..9, got 12"):
        mnist.load_data(tmp_path, download_missing=False)
    corrupt_case(tmp_path, mnist.TEST_LABELS, idx_bytes(np.array([1, 2]), 2049))
    with pytest.raises(mnist.MNISTFormatError, match=r"t10k-images-idx3-ubyte.gz has 3 images "
                                                     r"but t10k-labels-idx1-ubyte.gz has 2"):
        mnist.load_data(tmp_path, download_missing=False)
    assert issubclass(mnist.MNISTFormatError, ValueError)


def test_bad_gzip(tmp_path):
    raw, _ = synthetic()
    corrupt_case(tmp_path, mnist.TRAIN_LABELS, b"this is not gzip", gz=False)
    with pytest.raises(mnist.MNISTFormatError,
                       match="train-labels-idx1-ubyte.gz: not a valid gzip stream"):
        mnist.load_data(tmp_path, download_missing=False)
    corrupt_case(tmp_path, mnist.TRAIN_IMAGES,
                 gzip.compress(raw[mnist.TRAIN_IMAGES])[:-20], gz=False)
    with pytest.raises(mnist.MNISTFormatError,
                       match="train-images-idx3-ubyte.gz: truncated gzip stream"):
        mnist.load_data(tmp_path, download_missing=False)
    # a corrupted byte inside the deflate stream / CRC
    good = bytearray(gzip.compress(raw[mnist.TRAIN_IMAGES]))
    good[-6] ^= 0xFF
    corrupt_case(tmp_path, mnist.TRAIN_IMAGES, bytes(good), gz=False)
    with pytest.raises(mnist.MNISTFormatError, match="train-images-idx3-ubyte.gz: "):
        mnist.load_data(tmp_path, download_missing=False)


# ---------------------------------------------------------------- downloads from 127.0.0.1

class _Quiet(http.server.SimpleHTTPRequestHandler):
    """Serves the directory; under /short/ it promises more bytes than it sends."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/short/"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b\x08\x00" + b"\x00" * 60)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(root dir served, base URL) of a thread-run http.server on 127.0.0.1, random port."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(mnist, "TIMEOUT", 5.0)
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def serve(root, sub, raw, corrupt=None):
    """Put gzipped files under root/sub; corrupt maps name -> bytes served instead."""
    write_files(root / sub, raw)
    for name, data in (corrupt or {}).items():
        (root / sub / name).write_bytes(data)


def md5_table(raw):
    return {k: hashlib.md5(v).hexdigest() for k, v in raw.items()}


def test_download_success(server, tmp_path, monkeypatch):
    root, base = server
    raw, arrays = synthetic()
    serve(root, "good", raw)
    monkeypatch.setattr(mnist, "MIRRORS", [base + "good/"])
    monkeypatch.setattr(mnist, "MD5", md5_table(raw))
    dest = tmp_path / "cache"
    check_arrays(mnist.load_data(dest), arrays)
    assert sorted(os.listdir(dest)) == sorted(mnist.FILES)  # no temp files left
    check_arrays(mnist.load_data(dest), arrays)  # second call reads the cache


def test_download_first_mirror_404(server, tmp_path, monkeypatch):
    root, base = server
    raw, arrays = synthetic()
    (root / "empty").mkdir()
    serve(root, "good", raw)
    monkeypatch.setattr(mnist, "MIRRORS", [base + "empty/", base + "good/"])
    monkeypatch.setattr(mnist, "MD5", md5_table(raw))
    check_arrays(mnist.load_data(tmp_path / "c"), arrays)
    assert sorted(os.listdir(tmp_path / "c")) == sorted(mnist.FILES)


def test_download_md5_mismatch(server, tmp_path, monkeypatch):
    root, base = server
    raw, _ = synthetic()
    serve(root, "good", raw)
    table = md5_table(raw)
    table[mnist.TRAIN_LABELS] = "0" * 32
    monkeypatch.setattr(mnist, "MIRRORS", [base + "good/"])
    monkeypatch.setattr(mnist, "MD5", table)
    dest = tmp_path / "c"
    with pytest.raises(mnist.MNISTDownloadError,
                       match=r"train-labels-idx1-ubyte.gz:\n.*MD5 of the decompressed content"):
        mnist.load_data(dest)
    assert mnist.TRAIN_LABELS not in os.listdir(dest)
    assert not [f for f in os.listdir(dest) if f.endswith(".part")]


def test_download_all_mirrors_fail(server, tmp_path, monkeypatch):
    root, base = server
    (root / "empty").mkdir()
    monkeypatch.setattr(mnist, "MIRRORS", [base + "empty/", base + "nothing/"])
    with pytest.raises(mnist.MNISTDownloadError, match=r"(?s)empty/train-images.*404.*"
                                                       r"nothing/train-images.*404"):
        mnist.load_data(tmp_path / "c")
    assert os.listdir(tmp_path / "c") == []


@pytest.mark.parametrize("kind", ["truncated", "not-gzip"])
def test_download_corrupt_then_good(server, tmp_path, monkeypatch, kind):
    """A corrupt copy on the first mirror is rejected (with a reason) and the next one used."""
    root, base = server
    raw, arrays = synthetic()
    gz = gzip.compress(raw[mnist.TEST_IMAGES])
    bad = gz[: len(gz) // 2] if kind == "truncated" else b"<html>not found</html>"
    serve(root, "bad", raw, corrupt={mnist.TEST_IMAGES: bad})
    serve(root, "good", raw)
    monkeypatch.setattr(mnist, "MD5", md5_table(raw))
    monkeypatch.setattr(mnist, "MIRRORS", [base + "bad/"])
    with pytest.raises(mnist.MNISTDownloadError,
                       match="t10k-images-idx3-ubyte.gz: not a valid gzip stream"):
        mnist.load_data(tmp_path / "c")
    assert mnist.TEST_IMAGES not in os.listdir(tmp_path / "c")
    monkeypatch.setattr(mnist, "MIRRORS", [base + "bad/", base + "good/"])
    check_arrays(mnist.load_data(tmp_path / "c"), arrays)


def test_download_connection_cut_short(server, tmp_path, monkeypatch):
    root, base = server
    raw, arrays = synthetic()
    serve(root, "good", raw)
    monkeypatch.setattr(mnist, "MD5", md5_table(raw))
    monkeypatch.setattr(mnist, "MIRRORS", [base + "short/", base + "good/"])
    check_arrays(mnist.load_data(tmp_path / "c"), arrays)
    monkeypatch.setattr(mnist, "MIRRORS", [base + "short/"])
    with pytest.raises(mnist.MNISTDownloadError, match=r"short/train-images.*closed after 64 of 100000 bytes"):
        mnist.download(mnist.TRAIN_IMAGES, str(tmp_path / "d"))
    assert os.listdir(tmp_path / "d") == []


def test_download_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown file"):
        mnist.download("foo.gz", str(tmp_path))
