"""The arithmetic ceiling of a mini-batch epoch (deltaprop.bench.ceiling): the products it
counts and builds, and the figures it derives from their time. No timing is asserted."""

import math

import numpy as np
import pytest

from deltaprop import bench
from deltaprop.bench import ceiling


def test_batch_flop_matches_the_hand_count_of_784_128_10_at_batch_32():
    # layer 1 (784 -> 128): forward Z W and gradient Z^T Δ, 784 * 128 multiply-adds per sample each;
    # layer 2 (128 -> 10): the same two and the δ-recursion Δ W^T, 128 * 10 each;
    # two operations a multiply-add, 32 samples: 2 * 32 * (784*128*2 + 128*10*3) = 13,090,816
    assert bench.batch_flop([784, 128, 10], 32) == 2 * 32 * (784 * 128 * 2 + 128 * 10 * 3) == 13_090_816
    assert round(bench.batch_flop([784, 128, 10], 32) / 1e6, 1) == 13.1


def test_batch_flop_counts_the_delta_recursion_above_the_first_layer_only():
    # 784-256-128-10 at batch 200: 2 * 200 * (784*256*2 + 256*128*3 + 128*10*3)
    assert bench.batch_flop([784, 256, 128, 10], 200) == 2 * 200 * (401_408 + 98_304 + 3_840)
    assert bench.batch_flop([3, 5], 4) == 2 * 4 * 3 * 5 * 2  # one layer: forward and gradient only


@pytest.mark.parametrize("sizes", [[784, 128, 10], [64, 32, 16, 10], [1, 3, 1]])
def test_batch_products_are_the_products_batch_flop_counts(sizes):
    products = bench.batch_products(sizes, 7, "float64")
    assert len(products) == 3 * (len(sizes) - 1) - 1
    flop = sum(2 * left.shape[0] * left.shape[1] * right.shape[1] for left, right, _ in products)
    assert flop == bench.batch_flop(sizes, 7)
    for left, right, out in products:
        assert left.shape[1] == right.shape[0] and out.shape == (left.shape[0], right.shape[1])
        assert left.dtype == right.dtype == out.dtype == np.float64


def test_batch_products_read_z_and_w_transposed_as_an_epoch_does():
    # the second layer of 4-3-2 at batch 5: A = Z W, G = Z^T Δ, D = Δ W^T
    (Z, W, A), (Zt, delta, G), (delta2, Wt, D) = bench.batch_products([4, 3, 2], 5, "float32")[2:]
    assert Z.shape == (5, 3) and W.shape == (3, 2) and A.shape == (5, 2)
    assert Zt.base is Z and G.shape == (3, 2)
    assert delta2 is delta and Wt.base is W and D.shape == (5, 3)


def test_run_products_writes_each_product_into_its_output():
    products = bench.batch_products([6, 4, 3], 5, "float64", seed=1)
    for _, _, out in products:
        out[:] = np.nan
    bench.run_products(products)
    for left, right, out in products:
        np.testing.assert_allclose(out, left @ right, rtol=1e-12)


def test_products_ceiling_derives_its_figures_from_the_median_time():
    result = bench.products_ceiling([6, 4, 3], 5, "float32", repeats=3, min_time=0.0)
    assert isinstance(result, bench.Ceiling)
    assert math.isfinite(result.seconds_per_batch) and result.seconds_per_batch > 0
    assert result.mflop_per_batch == bench.batch_flop([6, 4, 3], 5) / 1e6
    assert result.samples_per_second == pytest.approx(5 / result.seconds_per_batch)
    assert result.gflop_per_second == pytest.approx(result.mflop_per_batch / result.seconds_per_batch / 1e3)


def test_each_repeat_lasts_at_least_the_floor(monkeypatch):
    """A repeat is sized to :data:`MIN_REPEAT_SECONDS` even when ``min_time`` is 0: count the batches."""
    calls = []
    original = ceiling.run_products

    def counting(products, batches=1):
        calls.append(batches)
        original(products, batches)

    monkeypatch.setattr(ceiling, "run_products", counting)
    ceiling.products_ceiling([2, 2], 1, "float64", repeats=2, min_time=0.0)
    assert calls[0] == 1 and len(set(calls[-2:])) == 1 and calls[-1] > 1  # warm-up, calibration, 2 equal repeats


@pytest.mark.parametrize("sizes, batch_size, repeats", [([784], 32, 1), ([784, 0, 10], 32, 1), ([4, 3], 0, 1),
                                                        ([4, 3], 2, 0)])
def test_a_shape_batch_or_repeat_count_out_of_range_is_a_value_error(sizes, batch_size, repeats):
    with pytest.raises(ValueError):
        bench.products_ceiling(sizes, batch_size, repeats=repeats)
