"""The command line through its real entry point: ``deltaprop.cli.main`` (the console script's
function) in-process, and ``python -m deltaprop`` in a subprocess."""

import csv
import json
import re
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

import deltaprop
from deltaprop import demo
from deltaprop.cli import data as dataio
from deltaprop.cli import main, training
from deltaprop.cli import pipeline as savedmodel
from deltaprop.engine import npzfile


def run(capsys, *argv):
    """``main(argv)`` -> (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, command):
    assert code == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith(f"deltaprop {command}: error: ")
    assert sum("error:" in line for line in lines) == 1


@pytest.fixture
def data(tmp_path):
    """Small files: a CSV with a header and text labels, a numeric regression CSV, an .npz."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((80, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    paths = {}
    paths["clf"] = tmp_path / "clf.csv"
    with open(paths["clf"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "label", "b", "c"])  # target in the middle: --target label
        for x, lab in zip(X, labels):
            w.writerow([f"{x[0]:.5f}", lab, f"{x[1]:.5f}", f"{x[2]:.5f}"])
    paths["reg"] = tmp_path / "reg.csv"
    np.savetxt(paths["reg"], np.column_stack([X, X @ [1.0, -2.0, 0.5] + 3.0]), delimiter=",", fmt="%.6f")
    paths["npz"] = tmp_path / "d.npz"
    np.savez(paths["npz"], X=X, y=(X[:, 0] > 0).astype(int))
    return paths, X, labels


def test_the_console_script_is_main():
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "deltaprop"]
    assert ep.load() is main


def test_python_dash_m_deltaprop_trains_iris(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deltaprop", "train", "iris", "--epochs", "3", "-q"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"held-out accuracy: \d\.\d+", proc.stdout)
    assert re.search(r"training throughput: [\d,]+ samples/s", proc.stdout)


@pytest.mark.parametrize("command", [None, "train", "predict", "bench", "approx"])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, *([command] if command else []), "--help")
    assert code == 0
    assert "usage: deltaprop" in out and len(out.splitlines()) > 5


def test_train_csv_save_predict_round_trip(capsys, data, tmp_path):
    paths, X, labels = data
    model, preds = tmp_path / "m.npz", tmp_path / "p.csv"
    code, out, err = run(capsys, "train", paths["clf"], "--target", "label", "--epochs", "30", "--lr", "0.05",
                         "--hidden", "8", "--out", model, "-q")
    assert code == 0, err
    assert float(re.search(r"held-out accuracy: ([\d.]+)", out).group(1)) >= 0.8
    code, _, err = run(capsys, "predict", model, paths["clf"], "--proba", "--out", preds)
    assert code == 0, err
    rows = list(csv.reader(open(preds)))
    assert rows[0] == ["prediction", "p_no", "p_yes"]
    predicted = np.array([r[0] for r in rows[1:]])
    assert predicted.shape == (80,) and set(predicted) <= {"yes", "no"}
    assert np.mean(predicted == labels) >= 0.8
    proba = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    # the same file without its target column, printed to stdout, predicts the same
    features = tmp_path / "features.csv"
    np.savetxt(features, X, delimiter=",", fmt="%.5f")
    code, out, _ = run(capsys, "predict", model, features)
    assert code == 0
    assert out.splitlines()[1:] == [r[0] for r in rows[1:]]
    # the model file is a deltaprop.MLP file too
    assert deltaprop.MLP.load(model).layer_sizes == (3, 8, 1)


def test_train_regression_round_trip_and_plot(capsys, data, tmp_path):
    paths, X, _ = data
    model, curve = tmp_path / "r.npz", tmp_path / "curve.png"
    code, out, err = run(capsys, "train", paths["reg"], "--epochs", "30", "--out", model,
                         "--plot", curve, "-q", "--dtype", "float32")
    assert code == 0, err
    assert "regression" in err
    assert float(re.search(r"held-out R\^2: ([-\d.]+)", out).group(1)) > 0.9
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(capsys, "predict", model, paths["reg"])
    pred = np.array([float(v) for v in out.splitlines()[1:]])
    assert np.sqrt(np.mean((pred - (X @ [1.0, -2.0, 0.5] + 3.0)) ** 2)) < 0.5


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_train_npz_with_other_solvers(capsys, data, solver):
    code, out, err = run(capsys, "train", data[0]["npz"], "--solver", solver, "--epochs", "20", "-q")
    assert code == 0, err
    assert "held-out accuracy" in out


def test_train_progress_bar_shows_loss_and_throughput(capsys, data):
    code, _, err = run(capsys, "train", data[0]["npz"], "--epochs", "2")
    assert code == 0
    assert "loss=" in err and "samples/s=" in err and "2/2" in err


@pytest.mark.parametrize("case, argv", [
    ("missing file", ["train", "nope.csv"]),
    ("unknown data set", ["train", "mnist"]),
    ("unknown column", ["train", "{clf}", "--target", "zzz"]),
    ("column index out of range", ["train", "{clf}", "--target", "9"]),
    ("non-numeric feature", ["train", "{clf}"]),  # the last column is a feature here, 'label' is text
    ("ragged rows", ["train", "{ragged}"]),
    ("empty file", ["train", "{empty}"]),
    ("not an npz", ["train", "{fake_npz}"]),
    ("npz without X", ["train", "{no_x}"]),
    ("text target for regression", ["train", "{clf}", "--target", "label", "--task", "regression"]),
    ("output directory missing", ["train", "{npz}", "--out", "{tmp}/no/such/dir/m.npz"]),
    ("model missing", ["predict", "{tmp}/none.npz", "{reg}"]),
    ("model not an npz", ["predict", "{reg}", "{reg}"]),
    ("model from elsewhere", ["predict", "{npz}", "{reg}"]),
    ("model from a newer version", ["predict", "{future}", "{reg}"]),
    ("wrong feature count", ["predict", "{model}", "iris"]),
    ("non-numeric data to predict", ["predict", "{model}", "{text}"]),
])
def test_bad_input_gets_one_line_error(capsys, data, tmp_path, case, argv):
    paths, X, _ = data
    files = {k: str(v) for k, v in paths.items()}
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "fake.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "no_x.npz", data=X)
    (tmp_path / "text.csv").write_text("a,b,c\n1,2,x\n")
    model = tmp_path / "m.npz"
    assert main(["train", files["reg"], "--epochs", "1", "-q", "--out", str(model)]) == 0
    fields = dict(np.load(model))
    fields["cli_version"] = np.int64(99)
    np.savez(tmp_path / "future.npz", **fields)
    capsys.readouterr()
    files.update(ragged=tmp_path / "ragged.csv", empty=tmp_path / "empty.csv", fake_npz=tmp_path / "fake.npz",
                 no_x=tmp_path / "no_x.npz", tmp=tmp_path, model=model, future=tmp_path / "future.npz",
                 text=tmp_path / "text.csv")
    code, _, err = run(capsys, *[a.format(**files) for a in argv])
    assert_one_line_error(code, err, argv[0])


def test_bad_option_values_are_usage_errors(capsys):
    for argv in (["train", "--lr", "-1"], ["train", "--hidden", "0"], ["train", "--epochs", "x"],
                 ["train", "--validation-split", "1"], ["approx"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "Traceback" not in err and "error:" in err


def test_without_matplotlib_plots_say_how_to_install(capsys, monkeypatch, tmp_path, data):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    for argv in (["approx", "--out", tmp_path / "f.png"],
                 ["train", data[0]["npz"], "--plot", tmp_path / "c.png", "-q"]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, argv[0])
        assert "pip install 'deltaprop[plot]'" in err
    assert not list(tmp_path.glob("*.png"))


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with npzfile.atomic_write(target) as fh:
            fh.write(b"half a mod")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_approx_draws_fig_5_3_and_meets_the_stated_errors(capsys, tmp_path):
    fig = tmp_path / "fig.png"
    code, out, err = run(capsys, "approx", "--out", fig, "--restarts", "1")
    assert code == 0, err
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rms = dict(re.findall(r"^\s*(\S+): E = \S+\s+RMS error = (\S+)$", out, re.M))
    assert set(rms) == {name for name, *_ in demo.APPROX_FUNCTIONS}
    for name, _, _, bound in demo.APPROX_FUNCTIONS:
        assert float(rms[name]) < bound, (name, rms[name], bound)


def test_bench_json_has_a_figure_for_every_available_backend(capsys):
    code, out, err = run(capsys, "bench", "--quick", "--shapes", "1-3-1", "--no-peers", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["unit"] == "samples/s" and report["machine"]["cores"] >= 1
    got = {(r["backend"], r["dtype"]) for r in report["results"]}
    assert got == {(b, d) for b in deltaprop.available_backends() for d in ("float32", "float64")}
    for row in report["results"]:
        assert row["shape"] == "1-3-1"
        assert np.isfinite(row["samples_per_second"]) and row["samples_per_second"] > 0
        numpy_rate = next(r["samples_per_second"] for r in report["results"]
                          if r["backend"] == "numpy" and r["dtype"] == row["dtype"])
        assert row["vs_numpy"] == pytest.approx(row["samples_per_second"] / numpy_rate)


def test_bench_jobs_adds_a_threaded_row_per_compiled_backend(capsys):
    code, out, err = run(capsys, "bench", "--quick", "--shapes", "1-3-1", "--dtypes", "float64",
                         "--no-peers", "--json", "--jobs", "2", "--parallel", "hogwild")
    assert code == 0, err
    rows = json.loads(out)["results"]
    compiled = [b for b in deltaprop.available_backends() if b != "numpy"]
    threaded = [r for r in rows if r.get("n_jobs") == 2]
    assert sorted(r["backend"] for r in threaded) == sorted(f"{b} x2" for b in compiled)
    for row in threaded:
        one = next(r for r in rows if r["backend"] == row["backend"][:-3])
        assert row["parallel"] == "hogwild"
        assert row["vs_one_thread"] == pytest.approx(row["samples_per_second"] / one["samples_per_second"])


@pytest.mark.parametrize("value", ["0", "two", "1.5"])
def test_bench_jobs_must_be_a_non_zero_integer(capsys, value):
    code, _, err = run(capsys, "bench", "--quick", "--jobs", value)
    assert code == 2 and "--jobs: expected a non-zero integer" in err


@pytest.mark.parametrize("argv", [["--backends", "fortran"], ["--shapes", "2-2-2"], ["--dtypes", "float16"]])
def test_bench_rejects_unknown_names(capsys, argv):
    code, _, err = run(capsys, "bench", "--quick", *argv)
    assert_one_line_error(code, err, "bench")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_predict_is_the_rebuilt_estimator_pipelines_predict(capsys, data, tmp_path, task):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    paths, X, _ = data
    source, extra = (paths["clf"], ["--target", "label"]) if task == "classification" else (paths["reg"], [])
    model = tmp_path / "m.npz"
    code, _, err = run(capsys, "train", source, *extra, "--epochs", "5", "--lr", "0.02", "--out", model, "-q")
    assert code == 0, err
    saved = savedmodel.load(model)
    pipe = saved.model
    assert isinstance(pipe, Pipeline) and isinstance(pipe.named_steps["scale"], StandardScaler)
    final = pipe.named_steps["mlp"]
    est = final if task == "classification" else final.regressor_
    expected_type = deltaprop.MLPClassifier if task == "classification" else deltaprop.MLPRegressor
    assert type(est) is expected_type
    assert task == "classification" or isinstance(final, TransformedTargetRegressor)
    # the estimator's parameters are stored with its weights
    assert (est.solver, est.learning_rate_init, est.max_iter, est.batch_size) == ("sgd", 0.02, 5, 1)
    rows = dataio.load_data(str(source), need_target=False, n_features=saved.n_features,
                            model_target=(saved.target_name, saved.target_index)).X
    assert rows.shape == (80, 3)
    code, out, err = run(capsys, "predict", model, source, "--proba")
    assert code == 0, err
    lines = list(csv.reader(out.splitlines()))
    if task == "classification":
        assert lines[0] == ["prediction", "p_no", "p_yes"]
        assert [r[0] for r in lines[1:]] == list(pipe.predict(rows))
        proba = np.array([[float(v) for v in r[1:]] for r in lines[1:]])
        np.testing.assert_allclose(proba, pipe.predict_proba(rows), rtol=1e-5)
    else:
        assert lines[0] == ["prediction"]
        np.testing.assert_array_equal([float(r[0]) for r in lines[1:]], pipe.predict(rows))


def test_ctrl_c_in_train_is_detected_by_the_warnings_type_and_keeps_the_old_model(capsys, data, tmp_path,
                                                                                   monkeypatch):
    """The estimator turns Ctrl-C into a TrainingInterrupted warning; train exits 130 on its type."""
    out = tmp_path / "m.npz"
    out.write_bytes(b"the previous model")

    def interrupted(progress, est):
        raise KeyboardInterrupt  # as if Ctrl-C came during the epoch's bookkeeping

    monkeypatch.setattr(training.Progress, "__call__", interrupted)
    code, _, err = run(capsys, "train", data[0]["npz"], "--epochs", "3", "--out", out, "-q")
    assert code == 130 and err.splitlines()[-1] == "deltaprop train: interrupted"
    assert out.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clf.csv", "reg.csv", "d.npz", "m.npz"])


def test_export_writes_an_onnx_graph_that_predicts_like_predict(capsys, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_iris

    model, onnx_file = tmp_path / "iris.npz", tmp_path / "iris.onnx"
    code, _, err = run(capsys, "train", "iris", "--epochs", "5", "--out", model, "-q")
    assert code == 0, err
    code, _, err = run(capsys, "export", model, onnx_file)
    assert code == 0, err
    X = load_iris().data
    labels, proba = ort.InferenceSession(str(onnx_file)).run(None, {"X": X})
    code, out, err = run(capsys, "predict", model, "iris", "--proba")
    rows = [line.split(",") for line in out.strip().splitlines()[1:]]
    assert list(labels) == [r[0] for r in rows]
    np.testing.assert_allclose(proba, [[float(v) for v in r[1:]] for r in rows], rtol=1e-5)


def test_export_of_a_file_that_is_not_a_model_is_a_one_line_error(capsys, tmp_path):
    pytest.importorskip("onnx")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, _, err = run(capsys, "export", bad, tmp_path / "out.onnx")
    assert_one_line_error(code, err, "export")
    assert not (tmp_path / "out.onnx").exists()
