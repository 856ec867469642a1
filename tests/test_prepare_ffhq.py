"""``bench prepare ffhq`` and ``ffhq_assets`` against a loopback mirror (``--base-url``) of
small files made here: the asset list, a full download, files put in place by hand, a later
file that differs from the recorded one, a 404 among 41 files, a refused connection, the dry
run, and the cache-only lookup the ffhq bundle calls."""

from __future__ import annotations

import hashlib
import json

import pytest
from loopback_server import closed_port, loopback_server

from core.errors import BenchError
from datasets.ffhq_assets import (
    CELEBA_ATTRIBUTES,
    CLASSIFIERS,
    GENERATORS,
    MissingAssetsError,
    ffhq_assets,
)
from datasets.prepare_ffhq import plan_ffhq, prepare_ffhq

GENERATOR = GENERATORS["ffhq512"].file


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def _content(name: str) -> bytes:
    return f"stand-in for {name}\n".encode() * 20


def _mirror() -> dict[str, bytes]:
    names = [asset.file for asset in GENERATORS.values()] + [a.file for a in CLASSIFIERS]
    return {name: _content(name) for name in names}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_asset_list_is_stylegans_40_classifiers_and_nvidias_generators():
    """Known answers copied from NVlabs/stylegan2 metrics/linear_separability.py and
    stylegan2-ada-pytorch train.py (see datasets/ffhq_assets.py)."""
    assert len(CELEBA_ATTRIBUTES) == 40 == len(set(CELEBA_ATTRIBUTES))
    files = [asset.file for asset in CLASSIFIERS]
    assert files[0] == "celebahq-classifier-00-male.pkl"
    assert files[5] == "celebahq-classifier-05-5-o-clock-shadow.pkl"
    assert files[24] == "celebahq-classifier-24-mouth-slightly-open.pkl"
    assert files[39] == "celebahq-classifier-39-wearing-necktie.pkl"
    assert CLASSIFIERS[19].url == ("https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/metrics/"
                                   "celebahq-classifier-19-eyeglasses.pkl")
    assert GENERATORS["ffhq512"].url == (
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
        "transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl")
    assert GENERATORS["config-f"].url == (
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl")
    assert all(asset.url.endswith("/" + asset.file) for asset in [*GENERATORS.values(),
                                                                 *CLASSIFIERS])
    assert all(asset.sha256 is None for asset in [*GENERATORS.values(), *CLASSIFIERS])


def test_base_url_replaces_host_and_folder(tmp_path):
    plan = plan_ffhq("config-f", base_url="http://mirror.example/nv", cache=tmp_path)
    assert len(plan) == 41
    assert plan[0].url == "http://mirror.example/nv/stylegan2-ffhq-config-f.pkl"
    assert plan[0].dest == tmp_path / "ffhq" / "stylegan2-ffhq-config-f.pkl"
    assert plan[40].url == "http://mirror.example/nv/celebahq-classifier-39-wearing-necktie.pkl"
    assert [p.asset.kind for p in plan_ffhq(only="generator", cache=tmp_path)] == ["generator"]
    assert len(plan_ffhq(only="classifiers", cache=tmp_path)) == 40
    with pytest.raises(BenchError, match="--base-url 'file:///x'"):
        plan_ffhq(base_url="file:///x", cache=tmp_path)


def test_prepare_downloads_records_and_assets_resolve(tmp_path):
    files = _mirror()
    with loopback_server(files) as served:
        summary = prepare_ffhq(base_url=served.url("/nv/"), cache=tmp_path)
        assert "41 files in" in summary and "41 downloaded" in summary
        again = prepare_ffhq(base_url=served.url("/nv/"), cache=tmp_path)
    assert "41 verified" in again and len(served.requests) == 41  # the rerun fetched nothing
    folder = tmp_path / "ffhq"
    record = json.loads((folder / "manifest.json").read_text())["files"]
    assert len(record) == 41
    assert record[GENERATOR] == {"sha256": _sha(files[GENERATOR]), "size": len(files[GENERATOR]),
                                 "source": served.url("/nv/") + GENERATOR}
    assets = ffhq_assets(cache=tmp_path, verify=True)
    assert assets.generator == folder / GENERATOR
    assert [p.name for p in assets.classifiers] == [a.file for a in CLASSIFIERS]
    assert assets.attributes[19] == "eyeglasses"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*record, "manifest.json"])


def test_file_put_in_place_by_hand_is_accepted_and_recorded(tmp_path):
    folder = tmp_path / "ffhq"
    folder.mkdir()
    by_hand = b"my own copy of the generator"
    (folder / GENERATOR).write_bytes(by_hand)
    with loopback_server(_mirror()) as served:
        summary = prepare_ffhq(only="generator", base_url=served.url(), cache=tmp_path)
    assert "1 found in place and recorded" in summary and served.requests == []
    record = json.loads((folder / "manifest.json").read_text())["files"]
    assert record[GENERATOR] == {"sha256": _sha(by_hand), "size": len(by_hand),
                                 "source": "in place"}


def test_later_file_that_differs_is_refused_and_not_kept(tmp_path):
    files = _mirror()
    classifier = CLASSIFIERS[7].file
    with loopback_server(files) as served:
        prepare_ffhq(only="classifiers", base_url=served.url(), cache=tmp_path)
        (tmp_path / "ffhq" / classifier).unlink()
        served.files[classifier] = files[classifier] + b"changed"  # another size
        with pytest.raises(BenchError) as caught:
            prepare_ffhq(only="classifiers", base_url=served.url(), cache=tmp_path)
        served.files[classifier] = files[classifier][::-1]  # same size, other bytes
        with pytest.raises(BenchError) as same_size:
            prepare_ffhq(only="classifiers", base_url=served.url(), cache=tmp_path)
    dest = tmp_path / "ffhq" / classifier
    assert "1 of 40 files not in place" in str(caught.value)
    assert f"recorded in {tmp_path / 'ffhq' / 'manifest.json'}" in str(caught.value)
    assert f"{served.url()}{classifier} -> {dest}" in str(caught.value)
    assert "sha256" in str(same_size.value) and "nothing kept" in str(same_size.value)
    assert not dest.exists()
    assert not any(p.name.startswith(".") for p in (tmp_path / "ffhq").iterdir())
    record = json.loads((tmp_path / "ffhq" / "manifest.json").read_text())["files"]
    assert record[classifier]["sha256"] == _sha(files[classifier])  # unchanged


def test_file_in_place_that_differs_from_the_record_is_refused_and_left(tmp_path):
    with loopback_server(_mirror()) as served:
        prepare_ffhq(only="generator", base_url=served.url(), cache=tmp_path)
        dest = tmp_path / "ffhq" / GENERATOR
        dest.write_bytes(b"x" * dest.stat().st_size)
        with pytest.raises(BenchError, match="the file in place has sha256 .* refused, left"):
            prepare_ffhq(only="generator", base_url=served.url(), cache=tmp_path)
    assert dest.read_bytes() == b"x" * dest.stat().st_size
    with pytest.raises(MissingAssetsError, match=f"differing from .*manifest.json {GENERATOR}"):
        ffhq_assets(cache=tmp_path, generator="ffhq512", verify=True)


def test_404_is_one_line_naming_url_and_path_and_the_rest_is_kept(tmp_path):
    files = _mirror()
    missing = CLASSIFIERS[12].file
    with loopback_server(files) as served:
        served.missing.add(missing)
        with pytest.raises(BenchError) as caught:
            prepare_ffhq(base_url=served.url(), cache=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "1 of 41 files not in place" in message
    assert (f"HTTP 404 Not Found: {served.url()}{missing} -> {tmp_path / 'ffhq' / missing}"
            in message)
    assert len(list((tmp_path / "ffhq").glob("*.pkl"))) == 40
    with pytest.raises(MissingAssetsError) as lookup:
        ffhq_assets(cache=tmp_path)
    assert str(lookup.value) == (
        f"ffhq: assets in {tmp_path / 'ffhq'}: missing {missing}; run `python -m bench prepare "
        "ffhq` to download them (or put them there by hand and run it to record them)")


def test_refused_connection_tries_the_host_once_and_writes_nothing(tmp_path, monkeypatch):
    import core.download

    opened = []
    real_urlopen = core.download.urlopen
    monkeypatch.setattr(core.download, "urlopen",
                        lambda request, **kw: opened.append(request) or real_urlopen(request, **kw))
    with closed_port() as port:
        base = f"http://127.0.0.1:{port}/"
        with pytest.raises(BenchError) as caught:
            prepare_ffhq(base_url=base, cache=tmp_path)
    message = str(caught.value)
    assert message.startswith("prepare ffhq: 41 of 41 files not in place")
    assert f"connection refused: {base}{GENERATOR} -> {tmp_path / 'ffhq' / GENERATOR}, " in message
    assert message.count(f" -> {tmp_path}") == 41 and "\n" not in message
    assert len(opened) == 1 and list(tmp_path.iterdir()) == []


def test_dry_run_shows_the_cache_and_touches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    with loopback_server(_mirror()) as served:
        text = prepare_ffhq("config-f", base_url=served.url(), dry_run=True)
    lines = text.splitlines()
    assert lines[0].startswith(f"ffhq: cache folder {tmp_path / 'cache' / 'ffhq'} (from "
                               "$BENCH_CACHE)")
    assert len(lines) == 42 and "to download" in lines[1]
    assert lines[1].endswith(f"stylegan2-ffhq-config-f.pkl  <- {served.url()}"
                             "stylegan2-ffhq-config-f.pkl")
    assert served.requests == [] and list(tmp_path.iterdir()) == []


def test_missing_assets_name_the_command_for_the_generator_asked(tmp_path):
    with pytest.raises(MissingAssetsError, match="missing stylegan2-ffhq-config-f.pkl, "
                       "celebahq-classifier-00-male.pkl and 39 more; run `python -m bench "
                       "prepare ffhq --generator config-f`"):
        ffhq_assets("config-f", cache=tmp_path)
    with pytest.raises(MissingAssetsError, match="--only classifiers"):
        ffhq_assets(None, cache=tmp_path)
    with pytest.raises(BenchError, match="generator 'nope' .* expected one of ffhq512"):
        ffhq_assets("nope", cache=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_prepare_ffhq(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    with loopback_server(_mirror()) as served:
        code = main(["prepare", "ffhq", "--only", "generator", "--base-url", served.url(),
                     "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and "1 downloaded" in out
    assert (tmp_path / "ffhq" / GENERATOR).read_bytes() == _content(GENERATOR)
