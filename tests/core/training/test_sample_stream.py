import numpy as np
import pytest
import torch
from tiny_models import tiny_dense_net

from promptmid.config import EngineConfig
from promptmid.models.checkpoint import load_checkpoint
from promptmid.training.data import load_pairs
from promptmid.training.dense_data import DenseAugmentConfig
from promptmid.training.sample_stream import SampleStream, draw_sample
from promptmid.training.stage2 import Stage2Config, sample_maker, seed_everything, train_stage2

PAIRS = ["3mos_SEN_rural_00", "3mos_SEN_plain_01", "s1s2_003"]


@pytest.fixture(scope="module")
def pairs(data_root):
    return load_pairs(str(data_root / "train"), PAIRS, EngineConfig(max_side=256))


def _cfg(tmp_path, name: str, workers: int, steps: int = 4) -> Stage2Config:
    return Stage2Config(pairs_dir="", out_path=str(tmp_path / name), steps=steps, batch=2, lr=1e-2, val_limit=0,
                        objective="dense", point_weight=0.1, workers=workers,
                        dense_augment=DenseAugmentConfig(crop=96, points=48))


def test_worker_made_samples_do_not_depend_on_the_number_of_workers(pairs, tmp_path):
    make = sample_maker(_cfg(tmp_path, "x", 1))
    want = [draw_sample(make, pairs, 3, k) for k in range(2, 7)]
    for workers in (1, 2):
        with SampleStream(make, pairs, seed=3, workers=workers, start=2) as stream:
            got = [next(iter(stream)) for _ in range(5)]
        for (ws, wstate), (gs, grng) in zip(want, got):
            np.testing.assert_array_equal(ws.sar.gray, gs.sar.gray)
            np.testing.assert_array_equal(ws.optical_points, gs.optical_points)
            assert grng.bit_generator.state == wstate  # the loss continues the sample's own generator
    assert not np.array_equal(want[0][0].sar.gray, want[1][0].sar.gray)


def test_training_with_workers_gives_the_same_weights_for_one_or_two_workers(pairs, tmp_path):
    def run(name: str, workers: int) -> dict:
        seed_everything(0)
        state = train_stage2(tiny_dense_net(), _cfg(tmp_path, name, workers), pairs=pairs)
        assert state.step == 4 and state.samples == 8 and np.isfinite(state.losses).all()
        return load_checkpoint(str(tmp_path / name))[1]

    a, b = run("a.safetensors", 1), run("b.safetensors", 2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
