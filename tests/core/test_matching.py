import numpy as np

from promptmid.matching import MatchConfig, mutual_nearest_neighbours


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_mutual_nearest_neighbours_exact_indices():
    d0 = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    d1 = _unit([[0, 0.9, 0.1], [0.95, 0.05, 0], [0, 0.1, 1]])
    pairs, sim = mutual_nearest_neighbours(d0, d1)
    assert pairs.tolist() == [[0, 1], [1, 0], [2, 2]]  # row 3 prefers d1[1], which prefers row 0
    assert np.all(sim > 0.9)


def test_non_mutual_and_ratio_and_chunking_agree():
    rng = np.random.default_rng(0)
    d0, d1 = _unit(rng.normal(size=(300, 16))), _unit(rng.normal(size=(250, 16)))
    full, _ = mutual_nearest_neighbours(d0, d1)
    chunked, _ = mutual_nearest_neighbours(d0, d1, MatchConfig(chunk=7))
    assert np.array_equal(full, chunked)
    one_way, _ = mutual_nearest_neighbours(d0, d1, MatchConfig(mutual=False))
    assert len(one_way) == 300 and len(full) < 300
    strict, _ = mutual_nearest_neighbours(d0, d1, MatchConfig(ratio=0.8))
    assert set(map(tuple, strict)) <= set(map(tuple, full))


def test_empty_inputs():
    pairs, sim = mutual_nearest_neighbours(np.zeros((0, 8), np.float32), np.ones((5, 8), np.float32))
    assert pairs.shape == (0, 2) and sim.shape == (0,)
