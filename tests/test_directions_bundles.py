"""Bundles with generators: shapes3d (shipped assets), ffhq (user paths): choices and messages."""

from __future__ import annotations

import pytest
import torch

import bench.planning.bundles as bundles
from bench.planning.bundles import load_bundle
from core.inputs import InputError


def test_ffhq_without_checkpoint_says_how_to_give_one(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(bundles.FFHQ_GENERATOR_ENV, raising=False)
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=bundles.FFHQ_GENERATOR_ENV):
        load_bundle("ffhq")
    monkeypatch.setenv(bundles.FFHQ_GENERATOR_ENV, str(tmp_path / "nope.pkl"))
    with pytest.raises(InputError, match=f"\\${bundles.FFHQ_GENERATOR_ENV} .*nope.pkl not found"):
        load_bundle("ffhq")


def test_ffhq_with_checkpoint_has_generator_and_no_ground_truth(monkeypatch, tmp_path) -> None:
    ckpt = tmp_path / "ffhq.pt"
    ckpt.write_bytes(b"not read until the generator is used")
    monkeypatch.delenv(bundles.FFHQ_GENERATOR_ENV, raising=False)
    monkeypatch.delenv(bundles.FFHQ_PREDICTOR_ENV, raising=False)
    bundle = load_bundle("ffhq", data_dir=str(tmp_path))
    assert bundle.provides() == {"generator", "sensor"}  # the paper's AlexNet sensor
    assert bundle.sensor == "alexnet" and bundle.identity["sensor"]["name"] == "alexnet"
    assert bundle.identity["generator"]["file"] == str(ckpt)
    monkeypatch.setenv(bundles.FFHQ_PREDICTOR_ENV, str(tmp_path / "missing.safetensors"))
    with pytest.raises(InputError, match="missing.safetensors not found"):
        load_bundle("ffhq", data_dir=str(tmp_path))
    with pytest.raises(InputError, match=r"--data-dir .*ffhq.pt: .*cannot be read"):
        bundle.sources()  # opened before any cell: the bytes above are no checkpoint


def test_ffhq_from_the_cache_has_the_classifiers_and_the_papers_protocol(monkeypatch,
                                                                        tmp_path) -> None:
    """What `bench prepare ffhq` leaves in the cache (here the stand-ins: a 32-px generator,
    16-px classifiers) makes the bundle: generator, the 40 attributes, and ContraFeat's paper
    protocol as the directions flow's paper settings (the quick ones keep the fixed edit)."""
    from ffhq_standin import GENERATOR_FILE, generator_bytes, write_classifiers

    from bench.flows.directions import flow_settings, metric_settings
    from datasets.ffhq_assets import CELEBA_ATTRIBUTES

    for name in (bundles.FFHQ_GENERATOR_ENV, bundles.FFHQ_PREDICTOR_ENV, "BENCH_DATA",
                 "BENCH_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    folder = write_classifiers(tmp_path / "ffhq")
    (folder / GENERATOR_FILE).write_bytes(generator_bytes())
    bundle = load_bundle("ffhq")
    assert bundle.provides() == {"generator", "predictor", "sensor"}
    assert "(16 px)" in bundle.sources()["predictor"]
    assert bundle.predictor.factor_names == CELEBA_ATTRIBUTES
    assert bundle.generator.resolution == 32
    paper = flow_settings("paper", bundle.protocol["paper"])
    assert (paper.discovery.num_samples, paper.discovery.truncation_psi,
            paper.discovery.num_directions, paper.edit_scale) == (500, 0.5, 30, 2.0)
    quick = flow_settings("quick", bundle.protocol["quick"])
    assert (quick.discovery.num_samples, quick.discovery.num_directions,
            quick.edit_scale) == (32, 10, 2.0)
    assert metric_settings("paper", bundle.protocol["paper"]) != metric_settings("paper")
    (folder / "celebahq-classifier-12-black-hair.pkl").unlink()  # a cut-short prepare
    with pytest.raises(InputError, match="missing celebahq-classifier-12-black-hair.pkl"):
        load_bundle("ffhq")
    for path in folder.glob("celebahq-*.pkl"):  # none at all: no predictor, no error
        path.unlink()
    assert "predictor" not in load_bundle("ffhq").provides()


def test_shapes3d_needs_the_shipped_generator(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(bundles.SHAPES3D_GENERATOR_ENV, raising=False)
    monkeypatch.setattr(bundles, "SHAPES3D_GENERATOR", tmp_path / "g.safetensors")
    with pytest.raises(FileNotFoundError, match="train-generator"):
        load_bundle("shapes3d")


def micro_generator(path) -> None:
    from models.stylegan2 import StyleGAN2Generator, get_preset, save_generator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # throwaway test weights; the caller's RNG state is restored
        gen = StyleGAN2Generator(get_preset("micro32"))
    save_generator(gen, path)


def test_shapes3d_records_ground_truth_choice_and_asset_hash(monkeypatch, tmp_path) -> None:
    micro_generator(tmp_path / "g.safetensors")
    monkeypatch.delenv(bundles.SHAPES3D_GENERATOR_ENV, raising=False)
    monkeypatch.setattr(bundles, "SHAPES3D_GENERATOR", tmp_path / "g.safetensors")
    monkeypatch.delenv("BENCH_DATA", raising=False)  # nothing named: the look-alike
    bundle = load_bundle("shapes3d")
    assert bundle.identity["ground_truth_source"] == "shapes3d-synth"
    assert len(bundle.identity["generator"]["sha256"]) == 64
    assert "generator_source" not in bundle.identity  # the shipped generator's ids stay
    assert {"generator", "ground_truth"} <= bundle.provides()
    assert bundle.generator.num_ws == 8


def test_shapes3d_takes_a_user_chosen_generator(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.setenv(bundles.SHAPES3D_GENERATOR_ENV, str(tmp_path / "missing.pkl"))
    with pytest.raises(InputError, match=f"{bundles.SHAPES3D_GENERATOR_ENV} .*missing.pkl not"):
        load_bundle("shapes3d")
    micro_generator(tmp_path / "mine.safetensors")
    monkeypatch.setenv(bundles.SHAPES3D_GENERATOR_ENV, str(tmp_path / "mine.safetensors"))
    bundle = load_bundle("shapes3d")
    sha = bundle.identity["generator"]["sha256"]
    assert bundle.identity["generator"]["file"] == "mine.safetensors"
    assert bundle.identity["generator_source"] == f"mine.safetensors sha256 {sha[:12]}"
    assert bundle.generator.resolution == 64 and bundle.generator.native_resolution == 32
    generator_line = dict(bundle.sources())["generator"]
    assert generator_line.endswith(f"(${bundles.SHAPES3D_GENERATOR_ENV}): native StyleGAN2, "
                                   "32 px, z 32, w 32, 8 W+ rows, 2 mapping layers, 16-32 channels")
    monkeypatch.delenv(bundles.SHAPES3D_GENERATOR_ENV)
    assert load_bundle("shapes3d").identity != bundle.identity  # its cells get their own ids


def test_oracle_bundles_share_the_data_and_differ_in_the_generator() -> None:
    flat, layered = load_bundle("shapes3d-oracle"), load_bundle("shapes3d-oracle-layered")
    assert flat.data_identity == layered.data_identity
    assert "num_ws" not in flat.identity["generator"]["oracle"]  # the original identity kept
    assert layered.identity["generator"]["oracle"]["num_ws"] == 12
    assert (flat.generator.num_ws, layered.generator.num_ws) == (1, 12)
    assert "true_directions" in layered.provides() and layered.sensor == flat.sensor


@pytest.mark.parametrize("kind", ["missing", "empty-folder", "file"])
def test_data_folder_by_variable_is_checked_like_the_flag(monkeypatch, tmp_path, kind) -> None:
    """$BENCH_DATA naming nothing usable stops the bundle as --data-dir does; the look-alike
    is used only when neither names a folder (never silently in place of the user's data)."""
    named = {"missing": tmp_path / "nowhere", "empty-folder": tmp_path / "empty",
             "file": tmp_path / "notes.txt"}[kind]
    if kind == "empty-folder":
        named.mkdir()
    if kind == "file":
        named.write_text("not data", encoding="utf-8")
    monkeypatch.delenv(bundles.SHAPES3D_GENERATOR_ENV, raising=False)
    monkeypatch.setenv("BENCH_DATA", str(named))
    with pytest.raises((InputError, FileNotFoundError), match=r"\$BENCH_DATA") as by_variable:
        load_bundle("shapes3d")
    monkeypatch.delenv("BENCH_DATA")
    with pytest.raises((InputError, FileNotFoundError), match="--data-dir") as by_flag:
        load_bundle("shapes3d", data_dir=str(named))
    assert str(by_variable.value).replace("$BENCH_DATA", "--data-dir") == str(by_flag.value)
    assert load_bundle("shapes3d").identity["ground_truth_source"] == "shapes3d-synth"


@pytest.mark.parametrize(("value", "fragment"), [
    ("foo", "is not a torch device"), ("cuda:7", r"CUDA device\(s\)"), ("cpu", None)])
def test_device_by_variable_is_checked(monkeypatch, value, fragment) -> None:
    monkeypatch.setenv("BENCH_DEVICE", value)
    if fragment is None:
        assert bundles.bench_device() == "cpu"
        return
    with pytest.raises(InputError, match=fragment):
        bundles.resolve_named_inputs()


def test_cache_by_variable_must_be_a_folder(monkeypatch, tmp_path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "file"))
    with pytest.raises(InputError, match=r"\$BENCH_CACHE .*file is a file"):
        bundles.resolve_named_inputs()
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "new"))  # made when first written
    bundles.resolve_named_inputs()
