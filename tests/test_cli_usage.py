"""The command line as a user meets it: predict's columns by name, ``--version``, errors that name
the option typed and give advice that fits, a scheduler that fails fast, one throughput figure,
the help texts and Fig. 5.3's legend."""

import csv
import os
import re
import socket
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

import deltaprop
from deltaprop import demo
from deltaprop.cli import main
from deltaprop.cli import pipeline as savedmodel
from deltaprop.estimators import NON_FINITE_MESSAGE

IRIS = [str(n) for n in load_iris().feature_names]


def run(capsys, *argv):
    """``main(argv)`` -> (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, command):
    """The error line of a command that failed with one line on stderr (exit status 1)."""
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith(f"deltaprop {command}: error: ")
    assert sum("error:" in line for line in lines) == 1
    return lines[-1]


def usage_error(code, err):
    """The error line of a usage error (exit status 2)."""
    assert code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        if header is not None:
            w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    """iris as a CSV with a header (the four features, then the species), and a model trained on it."""
    tmp = tmp_path_factory.mktemp("iris")
    X, y = load_iris(return_X_y=True)
    species = np.array(["setosa", "versicolor", "virginica"])[y]
    path = write_csv(tmp / "iris.csv", IRIS + ["species"], [[*map(str, x), s] for x, s in zip(X, species, strict=True)])
    model = tmp / "m.npz"
    assert main(["train", str(path), "--epochs", "20", "--solver", "adam", "--out", str(model), "-q"]) == 0
    return tmp, X, species, model


def train(capsys, *argv):
    code, _, err = run(capsys, "train", *argv, "-q")
    assert code == 0, err


def predictions(capsys, model, data, *extra):
    code, out, err = run(capsys, "predict", model, data, *extra)
    assert code == 0, err
    return out.splitlines(), err


# ---------------------------------------------------------------- predict: columns by name
def test_the_model_file_keeps_the_feature_names_of_a_csv_header(iris):
    assert savedmodel.load(iris[3]).feature_names == tuple(IRIS)


def test_reordered_columns_predict_as_the_original_order(capsys, iris):
    tmp, X, species, model = iris
    reference, _ = predictions(capsys, model, tmp / "iris.csv")
    assert np.mean(np.array(reference[1:]) == species) > 0.9  # a model that tells the classes apart
    order = [3, 2, 1, 0]
    reordered = write_csv(tmp / "reordered.csv", [IRIS[j] for j in order], X[:, order].astype(str))
    got, err = predictions(capsys, model, reordered)
    assert got == reference
    assert "note" not in err


def test_extra_named_columns_are_ignored_and_listed_in_one_note(capsys, iris):
    tmp, X, _, model = iris
    reference, _ = predictions(capsys, model, tmp / "iris.csv")
    rows = [[f"id{i}", x[2], "north", x[0], x[3], x[1]] for i, x in enumerate(X)]
    extra = write_csv(tmp / "extra.csv", ["id", IRIS[2], "site", IRIS[0], IRIS[3], IRIS[1]], rows)
    got, err = predictions(capsys, model, extra)
    assert got == reference
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "'id', 'site'" in notes[0]
    _, err = predictions(capsys, model, tmp / "iris.csv")  # the training file: its target is left out
    assert "note: " in err and "'species'" in err


def test_renamed_columns_are_a_one_line_error_naming_them(capsys, iris):
    tmp, X, _, model = iris
    renamed = write_csv(tmp / "renamed.csv", ["w", "x", "y", "z"], X.astype(str))
    code, _, err = run(capsys, "predict", model, renamed)
    line = one_line_error(code, err, "predict")
    assert all(repr(name) in line for name in IRIS + ["w", "x", "y", "z"])


def test_a_missing_feature_is_a_one_line_error_naming_it(capsys, iris):
    tmp, X, _, model = iris
    missing = write_csv(tmp / "missing.csv", IRIS[:3], X[:, :3].astype(str))
    code, _, err = run(capsys, "predict", model, missing)
    line = one_line_error(code, err, "predict")
    assert repr(IRIS[3]) in line and repr(IRIS[0]) not in line


def test_a_headerless_csv_is_taken_in_order(capsys, iris):
    tmp, X, _, model = iris
    reference, _ = predictions(capsys, model, tmp / "iris.csv")
    plain = write_csv(tmp / "plain.csv", None, X.astype(str))
    assert predictions(capsys, model, plain)[0] == reference
    code, _, err = run(capsys, "predict", model, write_csv(tmp / "three.csv", None, X[:, :3].astype(str)))
    assert "3 feature columns, but the model expects 4" in one_line_error(code, err, "predict")


def test_a_built_in_data_set_is_matched_by_name(capsys, iris, tmp_path):
    tmp, X, _, model = iris
    reference, _ = predictions(capsys, model, tmp / "iris.csv")
    assert predictions(capsys, model, "iris")[0] == reference  # scikit-learn's names, the CSV's
    builtin = tmp_path / "builtin.npz"
    train(capsys, "iris", "--epochs", "5", "--out", builtin)
    order = [1, 3, 0, 2]
    reordered = write_csv(tmp_path / "r.csv", [IRIS[j] for j in order], X[:, order].astype(str))
    assert predictions(capsys, builtin, reordered)[0] == predictions(capsys, builtin, "iris")[0]


def test_a_model_trained_without_names_takes_columns_in_order(capsys, tmp_path):
    X, y = load_iris(return_X_y=True)
    np.savez(tmp_path / "iris.npz", X=X, y=y)
    model = tmp_path / "m.npz"
    train(capsys, tmp_path / "iris.npz", "--epochs", "5", "--out", model)
    assert savedmodel.load(model).feature_names == ()
    reference, _ = predictions(capsys, model, tmp_path / "iris.npz")
    named = write_csv(tmp_path / "named.csv", ["d", "c", "b", "a"], X.astype(str))  # any names: in order
    got, err = predictions(capsys, model, named)
    assert got == reference and "note" not in err
    headerless = write_csv(tmp_path / "headerless.csv", None, X.astype(str))
    model2 = tmp_path / "m2.npz"
    train(capsys, write_csv(tmp_path / "t.csv", None, np.column_stack([X, y]).astype(str)), "--epochs", "5",
          "--out", model2)
    assert savedmodel.load(model2).feature_names == ()  # a headerless CSV has no names either
    assert predictions(capsys, model2, named)[0] == predictions(capsys, model2, headerless)[0]


def test_saved_model_align_matches_a_dataframe_by_name(iris, tmp_path):
    pd = pytest.importorskip("pandas")
    tmp, X, _, model = iris
    saved = savedmodel.load(model)
    expected = saved.model.predict(X)
    frame = pd.DataFrame(X, columns=IRIS)
    shuffled = frame[[IRIS[2], IRIS[0], IRIS[3], IRIS[1]]].assign(species="?", id=np.arange(len(X)))
    np.testing.assert_array_equal(saved.align(shuffled), X)
    np.testing.assert_array_equal(saved.model.predict(saved.align(shuffled)), expected)
    np.testing.assert_array_equal(saved.align(X[:, [3, 0, 1, 2]], columns=[IRIS[3], *IRIS[:3]]), X)
    np.testing.assert_array_equal(saved.align(X), X)  # no names: in order
    with pytest.raises(ValueError, match=re.escape(repr(IRIS[1]))):
        saved.align(frame.drop(columns=IRIS[1]))
    with pytest.raises(ValueError, match="the model takes 4 columns"):
        saved.align(X[:, :3])
    if find_spec("pyarrow") is not None:  # a Parquet file read with pandas: by name as well
        shuffled.to_parquet(tmp_path / "iris.parquet")
        aligned = saved.align(pd.read_parquet(tmp_path / "iris.parquet"))
        np.testing.assert_array_equal(saved.model.predict(aligned), expected)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_classifier_keeps_scikit_learns_feature_name_checks():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = deltaprop.MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns)
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        clf.predict(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        clf.predict(pd.DataFrame(X.to_numpy(), columns=["w", "x", "y", "z"]))


# ---------------------------------------------------------------- --version, help texts
def test_version_prints_the_packages_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"deltaprop {deltaprop.__version__}"


@pytest.mark.parametrize("command", [None, "train", "predict", "export", "bench", "approx"])
def test_help_speaks_of_the_software_and_its_sources(capsys, command):
    code, out, _ = run(capsys, *([command] if command else []), "--help")
    assert code == 0
    assert "seed's" not in out and "the seed " not in out.replace("\n", " ")
    if command == "bench":
        assert "one epoch each" not in out and "each timed call lasting at least" in out
    if command == "predict":
        assert "ignored and listed in a note on stderr" in " ".join(out.split())


# ---------------------------------------------------------------- errors and advice
def test_a_diverging_fit_advises_a_smaller_lr_or_adam(capsys):
    code, _, err = run(capsys, "train", "diabetes", "--lr", "1", "--momentum", "0.9", "-q")
    line = one_line_error(code, err, "train")
    assert "--lr" in line and "--solver adam" in line and "--momentum" in line
    assert "large values" not in line and "preprocessed" not in line


def test_the_estimators_keep_scikit_learns_divergence_message():
    X = np.random.RandomState(0).rand(20, 3) * 100
    reg = deltaprop.MLPRegressor(hidden_layer_sizes=(5,), activation="identity", solver="sgd", learning_rate_init=1.0,
                                 momentum=0.9, max_iter=20, random_state=0)
    with pytest.raises(ValueError, match=re.escape(NON_FINITE_MESSAGE)):
        reg.fit(X, np.full(20, 100.0))


def test_an_unreachable_scheduler_fails_within_the_timeout(capsys):
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    code, _, err = run(capsys, "train", "iris", "--scheduler", f"tcp://127.0.0.1:{port}", "-q")
    assert time.monotonic() - start < 10
    line = one_line_error(code, err, "train")
    assert f"tcp://127.0.0.1:{port}" in line and "--timeout" in line


@pytest.mark.parametrize("argv, option", [
    (["train", "iris", "--momentum", "2"], "--momentum"),
    (["train", "iris", "--alpha", "-1"], "--alpha"),
    (["train", "iris", "--seed", "-1"], "--seed"),
    (["approx", "--out", "f.png", "--seed", "-1"], "--seed"),
])
def test_bad_values_are_usage_errors_naming_the_option(capsys, argv, option):
    code, _, err = run(capsys, *argv)
    assert f"argument {option}:" in usage_error(code, err)


@pytest.mark.parametrize("command", ["train", "predict", "export", "bench", "approx"])
def test_errors_name_the_option_typed(capsys, iris, tmp_path, command):
    tmp, _, _, model = iris
    nowhere = tmp_path / "no" / "such" / "dir"
    argv, option, python_name = {
        "train": (["train", "iris", "--out", nowhere / "m.npz"], "--out", None),
        "predict": (["predict", model, "iris", "--out", nowhere / "p.csv"], "--out", None),
        "export": (["export", model, tmp_path / "m.onnx", "--opset", "5"], "--opset", "target_opset"),
        "bench": (["bench", "--quick", "--cpu", "4096"], "--cpu", None),
        "approx": (["approx", "--out", nowhere / "f.png"], "--out", None),
    }[command]
    if command == "export":
        pytest.importorskip("onnx")
    if command == "approx":
        pytest.importorskip("matplotlib")
    if command == "bench" and not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU pinning on this OS")
    code, _, err = run(capsys, *argv)
    line = one_line_error(code, err, command)
    assert option in line
    assert python_name is None or python_name not in line


# ---------------------------------------------------------------- throughput, Fig. 5.3
def test_the_progress_bar_and_the_last_line_give_one_throughput(capsys):
    code, out, err = run(capsys, "train", "digits", "--epochs", "5")
    assert code == 0, err
    bar = [float(v.replace(",", "")) for v in re.findall(r"samples/s=([\d,]+)", err)][-1]
    last = re.search(r"training throughput: ([\d,]+) samples/s over the whole fit", out)
    assert last is not None
    assert 0.5 < bar / float(last.group(1).replace(",", "")) < 2  # the same figure, up to the last epoch's end


def test_fig53_has_one_legend_entry_per_hidden_unit_in_its_colour():
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgba

    from deltaprop import plots

    fig = plots.fig53_figure(demo.fit_fig53(seed=0, n=20, restarts=1))
    ax = fig.axes[0]
    legend = ax.get_legend()
    entries = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
    units = [name for name in entries if name.startswith("hidden unit")]
    assert len(units) == 3
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 3
    colours = {line.get_label(): to_rgba(line.get_color()) for line in dashed}
    assert len(set(colours.values())) == 3  # three colours drawn, three entries
    for name in units:
        assert to_rgba(entries[name].get_color()) == colours[name]
    plots.pyplot().close(fig)


def test_the_onnx_extra_installs_the_runtime_the_documented_example_imports():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    extra = re.search(r"^onnx = \[(.*)\]", text, re.M).group(1)
    assert {re.match(r'\s*"([\w-]+)', r).group(1) for r in extra.split(",")} == {"onnx", "onnxruntime"}
