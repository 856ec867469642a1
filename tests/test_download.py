"""core.download.fetch against a loopback server: a whole download, resume after a cut
connection (in the same call and in the next), a file changed on the server between tries, a
server that ignores Range, wrong size or digest, 404 and a refused connection. After a failure
the destination is never there, and only a cut transfer leaves its partial file."""

from __future__ import annotations

import hashlib
import json

import pytest
from loopback_server import closed_port, etag, loopback_server

from core.digest_record import DigestRecord, Recorded
from core.download import DownloadError, Expected, fetch, partial_path
from core.errors import BenchError

DATA = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes
OTHER = b"another file of the same name " * 300


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Loopback requests never go through a proxy the environment may name."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_whole_download_is_renamed_into_place(tmp_path):
    dest = tmp_path / "cache" / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        digest = fetch(served.url() + "f.pkl", dest)
    assert dest.read_bytes() == DATA and digest == _sha(DATA)
    assert _leftovers(dest.parent) == ["f.pkl"]  # no partial, no state file
    assert served.requests == [("f.pkl", None, None)]


def test_cut_connection_resumes_in_the_same_call(tmp_path):
    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        served.cut_after["f.pkl"] = 3000
        digest = fetch(served.url() + "f.pkl", dest, expected=Expected(sha256=_sha(DATA)))
    assert dest.read_bytes() == DATA and digest == _sha(DATA)
    assert served.requests == [("f.pkl", None, None), ("f.pkl", "bytes=3000-", etag(DATA))]
    assert _leftovers(tmp_path) == ["f.pkl"]


def test_cut_connection_keeps_the_partial_and_the_next_call_resumes(tmp_path):
    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        served.cut_after["f.pkl"] = 4096
        with pytest.raises(DownloadError) as caught:
            fetch(served.url() + "f.pkl", dest, retries=0)
        message = str(caught.value)
        assert "connection cut after 4,096 of 10,244 bytes" in message
        assert f"put the file by hand at {dest}" in message and "\n" not in message
        assert not dest.exists() and partial_path(dest).read_bytes() == DATA[:4096]
        fetch(served.url() + "f.pkl", dest)
    assert dest.read_bytes() == DATA and not partial_path(dest).exists()
    assert served.requests[-1] == ("f.pkl", "bytes=4096-", etag(DATA))


def test_file_changed_on_the_server_restarts_instead_of_splicing(tmp_path):
    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        served.cut_after["f.pkl"] = 1000
        with pytest.raises(DownloadError):
            fetch(served.url() + "f.pkl", dest, retries=0)
        served.files["f.pkl"] = OTHER  # new ETag: If-Range fails, the server sends it whole
        fetch(served.url() + "f.pkl", dest)
    assert dest.read_bytes() == OTHER


def test_server_ignoring_range_starts_over(tmp_path):
    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        served.ignore_range = True
        served.cut_after["f.pkl"] = 5000
        fetch(served.url() + "f.pkl", dest)
    assert dest.read_bytes() == DATA
    assert served.requests[1][1] == "bytes=5000-"  # asked to resume, got the whole file


@pytest.mark.parametrize("expected, fragment", [
    (Expected(size=len(DATA) + 1, origin="recorded"), "the server offers 10,244 bytes, "
     "recorded 10,245; nothing kept"),
    (Expected(sha256="0" * 64, origin="published"), f"sha256 {_sha(DATA)}, published "
     f"{'0' * 64}; nothing kept"),
])
def test_wrong_size_or_digest_leaves_nothing(tmp_path, expected, fragment):
    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        with pytest.raises(DownloadError) as caught:
            fetch(served.url() + "f.pkl", dest, expected=expected)
    assert fragment in str(caught.value)
    assert _leftovers(tmp_path) == []


def test_wrong_size_after_a_resume_leaves_nothing(tmp_path):
    """The size the record expects is also checked on the bytes put together from two tries."""
    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        served.cut_after["f.pkl"] = 100
        with pytest.raises(DownloadError):
            fetch(served.url() + "f.pkl", dest, retries=0)
        with pytest.raises(DownloadError, match="sha256 .*, recorded in m.json"):
            fetch(served.url() + "f.pkl", dest,
                  expected=Expected(sha256=_sha(OTHER), origin="recorded in m.json"))
    assert _leftovers(tmp_path) == []


def test_404_names_url_and_path_and_writes_nothing(tmp_path):
    dest = tmp_path / "cache" / "f.pkl"
    with loopback_server({}) as served:
        url = served.url("/mirror/") + "f.pkl"
        with pytest.raises(DownloadError) as caught:
            fetch(url, dest)
    assert str(caught.value) == (f"cannot download {url} (HTTP 404 Not Found); put the file by "
                                 f"hand at {dest}")
    assert caught.value.reachable and not (tmp_path / "cache").exists()


def test_refused_connection_writes_nothing(tmp_path):
    dest = tmp_path / "cache" / "f.pkl"
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}/f.pkl"
        with pytest.raises(DownloadError) as caught:
            fetch(url, dest)
    assert str(caught.value) == (f"cannot download {url} (connection refused); put the file by "
                                 f"hand at {dest}")
    assert not caught.value.reachable and not (tmp_path / "cache").exists()


def test_digest_record_adds_once_and_refuses_other_bytes(tmp_path):
    record = DigestRecord(tmp_path)
    assert record.get("a.pkl") is None
    entry = Recorded(_sha(DATA), len(DATA), "http://x/a.pkl")
    record.add("a.pkl", entry)
    record.add("a.pkl", entry)  # the same again is fine
    assert DigestRecord(tmp_path).get("a.pkl") == entry
    with pytest.raises(BenchError, match="a.pkl is recorded with sha256"):
        record.add("a.pkl", Recorded(_sha(OTHER), len(OTHER), "in place"))
    stored = json.loads((tmp_path / "manifest.json").read_text())
    assert stored == {"format": 1, "files": {"a.pkl": {
        "sha256": _sha(DATA), "size": 10244, "source": "http://x/a.pkl"}}}


@pytest.mark.parametrize("text, fragment", [
    ("[1]", "not a file record of format 1"),
    ('{"format": 1, "files": {"a.pkl": {"sha256": "xyz", "size": 3}}}', "entry 'a.pkl' is not"),
    ("{", "not valid JSON"),
])
def test_damaged_record_is_one_error_naming_it(tmp_path, text, fragment):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(BenchError, match=fragment) as caught:
        DigestRecord(tmp_path).get("a.pkl")
    assert str(tmp_path / "manifest.json") in str(caught.value)


def test_progress_bar_and_a_full_disk(tmp_path, monkeypatch, capsys):
    """With ``progress`` the bar goes to stderr; a write that fails (a full disk) is a
    DownloadError naming the partial file, not a traceback, and the destination stays absent."""
    import errno

    import core.download

    dest = tmp_path / "f.pkl"
    with loopback_server({"f.pkl": DATA}) as served:
        fetch(served.url() + "f.pkl", dest, progress=True)
        assert "f.pkl" in capsys.readouterr().err
        dest.unlink()

        class FullDisk:
            def __init__(self, path, mode):
                self.handle = open(path, mode)  # closed in __exit__

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, block):
                raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(core.download, "open", FullDisk, raising=False)
        with pytest.raises(DownloadError, match=r"cannot write .*\.f\.pkl\.part \(No space"):
            fetch(served.url() + "f.pkl", dest)
    assert not dest.exists()
