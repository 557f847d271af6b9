"""The downloader against a local HTTP server (127.0.0.1 only) that can serve byte ranges."""
from __future__ import annotations

import functools
import io
import re
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from model.cli import InputError
from model.data import download

ROOT = Path(__file__).resolve().parents[1]


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files from `directory`, answering `Range: bytes=N-` with 206 unless the server says not to.

    Settings on the server: `honor_range` (False: always 200 with the whole file) and `cut_short`
    (that many next replies announce the full Content-Length but send only half of it).
    """

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.honor_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if server.cut_short:  # the connection ends cleanly halfway through the body
            server.cut_short -= 1
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # keep the test output quiet
        pass


def png_bytes() -> bytes:
    image = Image.new("RGB", (4, 3))
    image.putdata([(i * 20, 255 - i * 20, 7) for i in range(12)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def served(tmp_path: Path) -> dict:
    """A directory holding train.tar.gz (train/1.png, train/digitStruct.mat) and the PNG's bytes."""
    root = tmp_path / "served"
    root.mkdir()
    png = png_bytes()
    # Some incompressible padding so the archive is big enough to split in half meaningfully.
    padding = bytes((i * 7919 + (i >> 3) * 104729) % 251 for i in range(20000))
    with tarfile.open(root / "train.tar.gz", "w:gz") as tar:
        add_file(tar, "train/1.png", png)
        add_file(tar, "train/digitStruct.mat", b"placeholder, not read by download()")
        add_file(tar, "train/padding.bin", padding)
    return {"root": root, "png": png, "archive": (root / "train.tar.gz").read_bytes()}


@pytest.fixture
def server(served: dict):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(served["root"])))
    httpd.requests = []
    httpd.honor_range = True
    httpd.cut_short = 0
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def check_result(dest: Path, served: dict) -> None:
    assert (dest / "train.tar.gz").read_bytes() == served["archive"]
    assert not (dest / "train.tar.gz.part").exists()
    assert (dest / "train" / "1.png").read_bytes() == served["png"]
    assert (dest / "train" / "digitStruct.mat").exists()
    with Image.open(dest / "train" / "1.png") as image:
        assert image.size == (4, 3)


def test_full_download(tmp_path: Path, served: dict, server) -> None:
    dest = tmp_path / "data"  # does not exist yet: download creates it
    download(dest, ["train"], base_url=server.url)
    check_result(dest, served)
    assert server.requests == [("/train.tar.gz", None)]  # nothing to resume: no Range header


def test_resume_partial_download(tmp_path: Path, served: dict, server) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    half = len(served["archive"]) // 2
    assert half > 0
    (dest / "train.tar.gz.part").write_bytes(served["archive"][:half])
    download(dest, ["train"], base_url=server.url)
    assert server.requests == [("/train.tar.gz", f"bytes={half}-")]
    check_result(dest, served)


def test_server_ignoring_range_restarts(tmp_path: Path, served: dict, server) -> None:
    server.honor_range = False
    dest = tmp_path / "data"
    dest.mkdir()
    half = len(served["archive"]) // 2
    (dest / "train.tar.gz.part").write_bytes(served["archive"][:half])
    download(dest, ["train"], base_url=server.url)
    assert server.requests == [("/train.tar.gz", f"bytes={half}-")]  # asked, got a 200 with everything
    check_result(dest, served)


def test_body_cut_short_is_kept_as_partial_and_resumed(tmp_path: Path, served: dict, server) -> None:
    """A reply that ends before its Content-Length must not become the archive; the next run resumes it."""
    server.cut_short = 1
    dest = tmp_path / "data"
    with pytest.raises(OSError, match="run again to resume"):
        download(dest, ["train"], base_url=server.url)
    assert not (dest / "train.tar.gz").exists()
    half = len(served["archive"]) // 2
    assert (dest / "train.tar.gz.part").read_bytes() == served["archive"][:half]
    download(dest, ["train"], base_url=server.url)
    assert server.requests == [("/train.tar.gz", None), ("/train.tar.gz", f"bytes={half}-")]
    check_result(dest, served)


def test_existing_archive_is_not_fetched_again(tmp_path: Path, served: dict, server) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "train.tar.gz").write_bytes(served["archive"])
    download(dest, ["train"], base_url=server.url)
    assert server.requests == []
    check_result(dest, served)


def test_missing_archive_raises(tmp_path: Path, server) -> None:
    from urllib.error import HTTPError

    with pytest.raises(HTTPError):
        download(tmp_path, ["test"], base_url=server.url)
    assert not (tmp_path / "test.tar.gz").exists()


def test_cli_download(tmp_path: Path, served: dict, server) -> None:
    dest = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "model.data", "download", str(dest), "--sets", "train", "--base-url", server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"train: {dest / 'train'}" in result.stdout
    assert server.requests == [("/train.tar.gz", None)]
    check_result(dest, served)


def test_complete_partial_is_finished_without_refetching(tmp_path: Path, served: dict, server) -> None:
    # A run killed between the last byte and the rename: the server answers 416 to the range.
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "train.tar.gz.part").write_bytes(served["archive"])
    download(dest, ["train"], base_url=server.url)
    assert server.requests == [("/train.tar.gz", f"bytes={len(served['archive'])}-")]
    check_result(dest, served)


def test_a_damaged_archive_is_named_and_leaves_no_folder(tmp_path: Path, served: dict, server) -> None:
    # It ended in an EOFError traceback beside a half-unpacked train/.
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "train.tar.gz").write_bytes(served["archive"][: len(served["archive"]) * 2 // 3])
    with pytest.raises(InputError, match=f"{dest / 'train.tar.gz'}: damaged or cut short .*delete it and run download again"):
        download(dest, ["train"], base_url=server.url)
    assert sorted(path.name for path in dest.iterdir()) == ["train.tar.gz"]


def test_an_unpack_cut_off_halfway_is_done_again(tmp_path: Path, served: dict, server, monkeypatch) -> None:
    # Only digitStruct.mat was looked for, so a train/ cut off after it was taken as finished.
    whole = tarfile.TarFile.extractall

    def cut_off(tar, path, members=None, **kwargs):
        whole(tar, path, members=tar.getmembers()[:2], **kwargs)  # 1.png and digitStruct.mat, not padding.bin
        raise KeyboardInterrupt

    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "train.tar.gz").write_bytes(served["archive"])
    monkeypatch.setattr(tarfile.TarFile, "extractall", cut_off)
    with pytest.raises(KeyboardInterrupt):
        download(dest, ["train"], base_url=server.url)
    assert not (dest / "train").exists()
    monkeypatch.setattr(tarfile.TarFile, "extractall", whole)
    download(dest, ["train"], base_url=server.url)
    check_result(dest, served)
    assert (dest / "train" / "padding.bin").exists() and sorted(path.name for path in dest.iterdir()) == ["train", "train.tar.gz"]


def test_download_help_says_what_each_argument_is() -> None:
    done = subprocess.run([sys.executable, "-m", "model.data", "download", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    said = " ".join(done.stdout.split())
    assert "already in DEST is used without fetching it" in said
    assert "folder for the archives" in said and "which archives" in said and "where SET.tar.gz is fetched from" in said
