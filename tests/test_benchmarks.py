"""The asv suite stays runnable: discovery as ``asv check`` does it, then one quick call of
every benchmark on its smallest parameters (data sizes capped), so a broken benchmark fails
the tests while the suite itself stays out of CI's time."""

import importlib
import inspect
import itertools
import os
import pkgutil
import re
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIXES = ("time_", "track_", "peakmem_", "mem_", "timeraw_")


def _module_names():
    return sorted(info.name for info in pkgutil.iter_modules([os.path.join(ROOT, "benchmarks")]))


def _modules():
    """Every module of benchmarks/; one that does not import fails the collection of this file."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    return [importlib.import_module(f"benchmarks.{name}") for name in _module_names()]


@pytest.mark.parametrize("name", _module_names())
def test_every_module_of_the_suite_imports_without_optional_peers(name):
    """asv imports every module of benchmarks/ at discovery: one failing import (say, of an
    optional peer such as torch at module level) stops the whole suite from running."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    importlib.import_module(f"benchmarks.{name}")


def _benchmarks():
    """(module, class, method name) of every benchmark, as asv discovers them."""
    found = []
    for module in _modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or name.startswith("_"):
                continue
            for attr in dir(cls):
                if attr.startswith(PREFIXES) and callable(getattr(cls, attr)):
                    found.append((module, cls, attr))
    return found


BENCHMARKS = _benchmarks()
IDS = [f"{m.__name__.split('.')[-1]}.{c.__name__}.{a}" for m, c, a in BENCHMARKS]


def test_the_suite_has_the_headline_and_its_time_twin():
    names = {f"{c.__name__}.{a}" for _, c, a in BENCHMARKS}
    assert {"PerSampleSGD.track_samples_per_second", "PerSampleSGD.time_sgd_epoch"} <= names
    assert any(n.split(".")[1].startswith("peakmem_") for n in names)


def test_the_batch_epochs_track_their_fraction_of_the_ceiling_beside_their_throughput():
    minibatch = importlib.import_module("benchmarks.bench_minibatch")
    assert minibatch.BatchEpoch.track_samples_per_second.unit == "samples/s"
    assert minibatch.BatchEpoch.track_fraction_of_ceiling.unit == "ratio"


@pytest.mark.parametrize("module, cls, attr", BENCHMARKS, ids=IDS)
def test_benchmark_declaration_is_valid(module, cls, attr):
    """What ``asv check`` checks: params match param_names and the method signatures."""
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    names = getattr(cls, "param_names", [])
    assert len(names) == len(params), "param_names and params differ in length"
    for values in params:
        assert values and all(isinstance(v, str) for v in values), "params are short strings"
    n_args = len(inspect.signature(getattr(cls, attr)).parameters) - 1  # self
    assert n_args == len(params)
    if hasattr(cls, "setup"):
        assert len(inspect.signature(cls.setup).parameters) - 1 == len(params)
    if attr.startswith("track_"):
        assert getattr(getattr(cls, attr), "unit", None), "a track_ benchmark states its unit"


def test_the_quick_run_selects_each_class_s_quick_params_and_nothing_else():
    """``python -m benchmarks.quick``'s expression, matched the way ``asv run --bench`` matches
    it (``module.Class.method('a', 'b')``): exactly the product of each class's ``quick_params``,
    or all of ``params`` for a class without them; every benchmark keeps at least one."""
    quick = importlib.import_module("benchmarks.quick")
    regex = quick.quick_regex()
    for module, cls, attr in BENCHMARKS:
        params = quick._as_lists(getattr(cls, "params", None))
        subset = quick._as_lists(getattr(cls, "quick_params", None)) or params
        name = f"{module.__name__.split('.')[-1]}.{cls.__name__}.{attr}"
        chosen = {combo for combo in itertools.product(*params)
                  if re.search(regex, f"{name}({', '.join(repr(v) for v in combo)})")}
        assert chosen == set(itertools.product(*subset)) and chosen, name


def test_quick_params_must_be_a_subset_of_params(monkeypatch):
    quick = importlib.import_module("benchmarks.quick")
    sgd = importlib.import_module("benchmarks.bench_sgd")
    monkeypatch.setattr(sgd.PerSampleSGD, "quick_params", (["numba"], ["float16"], ["1-3-1"]))
    with pytest.raises(ValueError, match="PerSampleSGD"):
        quick.quick_selection()
    monkeypatch.setattr(sgd.PerSampleSGD, "quick_params", (["numba"], ["float32"]))
    with pytest.raises(ValueError, match="PerSampleSGD"):
        quick.quick_selection()


@pytest.fixture
def small_data(monkeypatch):
    """Cap every benchmark data set at a few dozen samples; the compile benchmark runs its script
    on the numpy backend (the numba compile itself is what asv measures, seconds per dtype)."""
    common = importlib.import_module("benchmarks.common")
    original, original_digits = common.sgd_data, common.digits

    def sgd_data(shape, dtype, n=None):
        return original(shape, dtype, n=min(n or common.N_SAMPLES[shape], 32))

    for module in _modules():
        if hasattr(module, "sgd_data"):
            monkeypatch.setattr(module, "sgd_data", sgd_data)
        if hasattr(module, "digits"):
            monkeypatch.setattr(module, "digits", lambda n=None: original_digits(120))
        if hasattr(module, "N_TRAIN"):
            monkeypatch.setattr(module, "N_TRAIN", 100)
        if hasattr(module, "_SCRIPT"):  # NumbaCompile: the same script on numpy, no compile wait
            monkeypatch.setattr(module, "_SCRIPT", module._SCRIPT.replace('backend="numba"', 'backend="numpy"'))


# --- what each time_ benchmark's call does, checked on the benchmark after the call ------------
# A check is (prepare, verify): prepare(bench) runs after setup and returns what verify(bench,
# prepared) needs to tell that the timed call did the work it names.


def _weights_before(bench):
    return bench.net.w.copy()


def _weights_moved(bench, before):
    """An epoch of gradient descent ran: every weight finite, and the weights moved."""
    assert np.isfinite(bench.net.w).all()
    assert not np.array_equal(bench.net.w, before), "the timed call left the weights unchanged"


def _spy(obj, name):
    """Record what ``obj.name(...)`` returns, each call, in the returned list."""
    original, returned = getattr(obj, name), []

    def spy(*args, **kwargs):
        returned.append(original(*args, **kwargs))
        return returned[-1]

    setattr(obj, name, spy)
    return returned


def _forward_prepare(bench):
    return bench.net.w.copy(), _spy(bench.net, "forward")


def _forward_ran(bench, prepared):
    """One forward pass over every sample: outputs (n, K), finite; the weights untouched."""
    before, returned = prepared
    assert len(returned) == 1
    Y = returned[0]
    assert Y.shape == (bench.X.shape[0], bench.net.coefs_[-1].shape[1]) and np.isfinite(Y).all()
    assert np.array_equal(bench.net.w, before)


def _gradient_prepare(bench):
    bench.g[:] = np.nan
    return None


def _gradient_filled(bench, _):
    """The full-batch gradient on n_jobs threads: the one-thread gradient, up to summation order."""
    _, g = bench.net.loss_and_gradient(bench.X, bench.T, n_jobs=1)
    np.testing.assert_allclose(bench.g, g, rtol=1e-9, atol=1e-9)


def _estimator_fitted(bench, _):
    """A whole fit: as many epochs as configured, and predictions for the held-out digits."""
    module = sys.modules[type(bench).__module__]
    if hasattr(bench.est, "n_iter_"):
        assert bench.est.n_iter_ == module.EPOCHS
    assert bench.est.predict(bench.X_test).shape == bench.y_test.shape


def _default_fit_ran(bench, returned):
    """One ``MLPClassifier()`` fit: n_iter_ epochs, each with a finite loss."""
    assert len(returned) == 1
    est = returned[0]
    assert 1 <= est.n_iter_ <= sys.modules[type(bench).__module__].EPOCHS
    assert len(est.loss_curve_) == est.n_iter_ and np.isfinite(est.loss_curve_).all()


TIMED_WORK = {
    "PerSampleSGD.time_sgd_epoch": (_weights_before, _weights_moved),
    "MiniBatchEpoch.time_batch_epoch": (_weights_before, _weights_moved),
    "BatchEpoch.time_batch_epoch": (_weights_before, _weights_moved),
    "ParallelSGD.time_epoch": (_weights_before, _weights_moved),
    "ParallelMiniBatch.time_epoch": (_weights_before, _weights_moved),
    "Forward.time_forward": (_forward_prepare, _forward_ran),
    "ParallelLossGradient.time_loss_and_gradient": (_gradient_prepare, _gradient_filled),
    "DigitsFit.time_fit": (lambda bench: None, _estimator_fitted),
    "DefaultClassifier.time_fit": (lambda bench: _spy(bench, "_fit"), _default_fit_ran),
}


def test_every_time_benchmark_says_what_work_it_times():
    timed = {f"{c.__name__}.{a}" for _, c, a in BENCHMARKS if a.startswith("time_")}
    assert timed == set(TIMED_WORK)


@pytest.mark.parametrize("module, cls, attr", BENCHMARKS, ids=IDS)
def test_benchmark_runs_once_on_its_smallest_parameters(module, cls, attr, small_data):
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    for combo in itertools.product(*params):  # the first combination this machine can run
        bench = cls()
        try:
            if hasattr(bench, "setup"):
                bench.setup(*combo)
        except NotImplementedError:
            continue
        if attr.startswith("time_"):
            prepare, verify = TIMED_WORK[f"{cls.__name__}.{attr}"]
            prepared = prepare(bench)
        result = getattr(bench, attr)(*combo)
        if attr.startswith("track_"):
            assert isinstance(result, float) and result > 0
        if attr.startswith("time_"):
            verify(bench, prepared)
        if hasattr(bench, "teardown"):
            bench.teardown(*combo)
        return
    pytest.skip(f"no parameter combination of {cls.__name__} is available here")
