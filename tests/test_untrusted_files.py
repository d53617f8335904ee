"""Model files (and .npz data files) are untrusted input.

Every file here is built by hand (``zipfile`` and ``numpy.lib.format``), so a header can claim
far more than its body holds. For each crafted file: ``MLP.load`` raises ValueError naming the
path and the problem, ``deltaprop predict`` exits 1 with one line on stderr, and the files that
attack memory are loaded in a child process whose address space is capped a little above what it
uses after its imports, where they must give ValueError (or load, when the attack is in a member
the format never reads) rather than MemoryError.
"""

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

from deltaprop import MLP
from deltaprop.cli import main
from deltaprop.cli import pipeline as savedmodel

# ------------------------------------------------------------------ building files by hand


def npy(value):
    """The ``.npy`` bytes numpy writes for ``value`` (objects pickled: only for attack files)."""
    buf = io.BytesIO()
    npy_format.write_array(buf, np.asanyarray(value), allow_pickle=True)
    return buf.getvalue()


def npy_header(descr, shape, body=b"", fortran_order=False):
    """A hand-made ``.npy``: a header claiming ``shape`` of ``descr``, then ``body`` (any length)."""
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran_order, "shape": shape})
    return buf.getvalue() + body


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    """An archive of ``members``: name -> bytes (the name as stored, ``.npy`` suffix included)."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def net_fields(sizes=(3, 4, 3), output="softmax", loss="cross_entropy"):
    """The members ``MLP.save`` writes, spelled out as the format (not taken from the code)."""
    net = MLP(list(sizes), hidden="tanh", output=output, loss=loss, backend="numpy", random_state=0)
    return dict(format=np.str_("deltaprop.MLP"), version=np.int64(1),
                layer_sizes=np.asarray(sizes, dtype=np.int64), hidden=np.str_("tanh"),
                output=np.str_(output), loss=np.str_(loss), dtype=np.str_("float64"), w=net.w.copy())


def cli_fields(task="classification", sizes=(3, 4, 3), classes=("a", "b", "c"), **changes):
    """The members ``deltaprop train --out`` writes (network plus preprocessing)."""
    output, loss = ("softmax", "cross_entropy") if task == "classification" else ("identity", "squared_error")
    fields = net_fields(sizes, output, loss)
    fields.update(cli_format=np.str_("deltaprop.cli"), cli_version=np.int64(1), task=np.str_(task),
                  classes=np.asarray(classes) if len(classes) else np.array([], dtype=np.float64),
                  x_mean=np.zeros(sizes[0]), x_scale=np.ones(sizes[0]), y_mean=np.float64(0.0),
                  y_scale=np.float64(1.0), feature_names=np.array([f"f{i}" for i in range(sizes[0])]),
                  target_name=np.str_("label"), target_index=np.int64(-1))
    fields.update(changes)
    return fields


def members(fields, **raw):
    """``fields`` as archive members (``name.npy`` -> bytes), some replaced by ``raw`` bytes."""
    out = {f"{k}.npy": npy(v) for k, v in fields.items()}
    out.update({f"{k}.npy": v for k, v in raw.items()})
    return out


class Boom:
    """Unpickling this creates the file ``MARKER``: it must never happen."""

    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


#: Files whose attack is on memory (checked under an address-space cap in a child process too):
#: name -> (members builder, what MLP.load says, or None when the file loads: the attack is in a
#: member the format never reads).
MEMORY_ATTACKS = {
    # an .npy header claiming 10^12 float64 (7.28 TiB) with an 8-byte body, as the weights
    "w_header_claims_1e12": (lambda: members(net_fields(), w=npy_header("<f8", (10**12,), bytes(8))),
                             r"member 'w' has shape \(1000000000000,\); expected \(31,\)"),
    # the same header in a member the format does not have: never opened
    "unused_header_claims_1e12": (lambda: {**members(net_fields()), "junk.npy": npy_header("<f8", (10**12,), bytes(8))},
                                  None),
    # layer_sizes of 10^12 (43.7 TiB of weights), a tiny w
    "layer_sizes_1e12": (lambda: members(net_fields(), layer_sizes=npy(np.array([3, 10**12, 3]))),
                         r"layer_sizes \[3, 1000000000000, 3\] describe 7000000000003 parameters"),
    # layer_sizes of 3e8 in a 2 KB file (13.4 GiB)
    "layer_sizes_3e8": (lambda: members(net_fields(), layer_sizes=npy(np.array([3 * 10**8, 4, 3]))),
                        r"describe 1200000019 parameters"),
    # under the sanity limit but 229 MiB: the weight vector's length is what stops it
    "layer_sizes_1e7_short_w": (lambda: members(net_fields(), layer_sizes=npy(np.array([10**7, 3, 1]))),
                                r"member 'w' has shape \(31,\); expected \(30000007,\)"),
    # a matching header for that size, with an 8-byte body: the zip entry is too small for it
    "layer_sizes_1e7_w_header_lies": (
        lambda: members(net_fields(), layer_sizes=npy(np.array([10**7, 3, 1])),
                        w=npy_header("<f8", (30000007,), bytes(8))),
        r"member 'w' is \d+ bytes, but its header describes 240000\d+"),
    # a version 2.0 header whose length field claims 2 GiB
    "header_length_2GiB": (
        lambda: members(net_fields(), w=b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + bytes(64)),
        r"member 'w' has a 2147483648-byte \.npy header"),
}


def _bad(fields=None, **raw):
    return lambda: members(net_fields() if fields is None else fields, **raw)


def _pickled_w():
    return npy(np.array([Boom(), Boom()], dtype=object))


def _corrupt_w(path):
    """A saved model with one byte of the weights flipped (the zip CRC no longer matches)."""
    fields = net_fields()
    write_zip(path, members(fields))
    data = bytearray(path.read_bytes())
    at = bytes(data).find(fields["w"].tobytes())
    data[at + 5] ^= 0xFF
    path.write_bytes(bytes(data))


#: Malformed files: name -> (members builder or a function(path) writing the file, what MLP.load says).
MALFORMED = {
    "plain_npy": (lambda path: path.write_bytes(npy(np.zeros(5))), r"a single \.npy array, not an \.npz archive"),
    "text_file": (lambda path: path.write_text("hello"),
                  r"not a deltaprop model file \(not a readable \.npz/zip archive"),
    "truncated_zip": (lambda path: path.write_bytes(write_zip(path, members(net_fields())).read_bytes()[:700]),
                      r"not a deltaprop model file \(not a readable \.npz/zip archive"),
    "corrupt_weights": (_corrupt_w, r"member 'w' cannot be read \(BadZipFile: Bad CRC-32"),
    "other_npz": (lambda: members({"X": np.zeros(3)}), r"not a deltaprop model file \(it has no member 'format'\)"),
    "missing_w": (lambda: {k: v for k, v in members(net_fields()).items() if k != "w.npy"},
                  r"not a deltaprop model file \(it has no member 'w'\)"),
    "no_npy_suffix": (lambda: {(k[:-4] if k == "w.npy" else k): v for k, v in members(net_fields()).items()},
                      r"member 'w' is stored without the \.npy suffix"),
    "wrong_format": (_bad(format=npy(np.str_("something.else"))), r"format marker 'something.else'"),
    "future_version": (_bad(version=npy(np.int64(99))), r"model file version 99 is not supported"),
    "text_version": (_bad(version=npy(np.str_("1"))), r"member 'version' has dtype <U1; expected integers"),
    "float_version": (_bad(version=npy(np.float64(1.0))), r"member 'version' has dtype float64; expected integers"),
    "layer_sizes_0d": (_bad(layer_sizes=npy(np.int64(3))),
                       r"member 'layer_sizes' has shape \(\); expected a 1-D array"),
    "layer_sizes_2d": (_bad(layer_sizes=npy(np.array([[3, 4, 3]]))),
                       r"member 'layer_sizes' has shape \(1, 3\); expected a 1-D array"),
    "layer_sizes_text": (_bad(layer_sizes=npy(np.array(["3", "4", "3"]))), r"member 'layer_sizes' has dtype <U1"),
    "layer_sizes_float": (_bad(layer_sizes=npy(np.array([3.0, 4.0, 3.0]))), r"member 'layer_sizes' has dtype float64"),
    "layer_sizes_zero": (_bad(layer_sizes=npy(np.array([3, 0, 3]))),
                         r"layer_sizes must be at least 2 positive integers"),
    "layer_sizes_negative": (_bad(layer_sizes=npy(np.array([3, -4, 3]))), r"layer_sizes must be at least 2 positive"),
    "layer_sizes_one": (_bad(layer_sizes=npy(np.array([3]))), r"layer_sizes must be at least 2 positive integers"),
    "layer_sizes_many": (_bad(layer_sizes=npy(np.ones(5000, dtype=np.int64))),
                         r"member 'layer_sizes' is \d+ bytes; at most \d+ expected"),
    "object_w": (_bad(w=_pickled_w()), r"member 'w' has an object dtype \(a pickle\)"),
    "object_hidden": (_bad(hidden=npy(np.array(Boom(), dtype=object))), r"member 'hidden' has an object dtype"),
    "hidden_unknown": (_bad(hidden=npy(np.str_("sigmoidish"))), r"hidden must be one of .*got 'sigmoidish'"),
    "hidden_long": (_bad(hidden=npy(np.str_("x" * 5000))), r"member 'hidden' is \d+ bytes; at most \d+ expected"),
    "dtype_float16": (_bad(dtype=npy(np.str_("float16"))), r"dtype must be 'float32' or 'float64'"),
    "dtype_garbage": (_bad(dtype=npy(np.str_("not a dtype"))), r"dtype must be 'float32' or 'float64'"),
    "w_int": (_bad(w=npy(np.zeros(31, dtype=np.int64))), r"member 'w' has dtype int64; expected floats"),
    "w_float32_in_float64_file": (_bad(w=npy(np.zeros(31, dtype=np.float32))),
                                  r"member 'w' has dtype float32, but the file's dtype is float64"),
    "w_nan": (_bad(w=npy(np.full(31, np.nan))), r"member 'w' \(the weights\) contains NaN or infinity"),
    "w_2d": (_bad(w=npy(np.zeros((31, 1)))), r"member 'w' has shape \(31, 1\); expected a 1-D array"),
    "w_fortran": (_bad(w=npy_header("<f8", (31,), bytes(8 * 31), fortran_order=True)),
                  r"member 'w' is stored in Fortran order"),
    "w_structured": (_bad(w=npy(np.zeros(31, dtype=[("a", "<f8")]))), r"member 'w' has dtype .*expected floats"),
    "w_bad_magic": (_bad(w=b"\x93NUMPZ\x01\x00" + bytes(300)), r"member 'w' is not a \.npy array"),
    "w_empty_member": (_bad(w=b""), r"member 'w' is not a \.npy array"),
    "w_header_garbage": (_bad(w=b"\x93NUMPY\x01\x00" + (16).to_bytes(2, "little") + b"{'descr': [[[[[["),
                         r"member 'w' has an invalid \.npy header"),
    "w_npy_version_3": (_bad(w=b"\x93NUMPY\x03\x00" + bytes(300)), r"member 'w' has \.npy format version 3\.0"),
    "w_extra_bytes": (_bad(w=npy(np.zeros(31)) + bytes(8)), r"member 'w' is \d+ bytes, but its header describes"),
    "duplicate_w": (lambda: list(members(net_fields()).items()) + [("w.npy", npy(np.ones(31)))],
                    r"member 'w' appears 2 times"),
}


def build(path, builder):
    """Write the file ``builder`` describes at ``path``."""
    if builder.__code__.co_argcount == 1:
        builder(path)
        return path
    spec = builder()
    if isinstance(spec, list):  # duplicate names: zipfile warns but writes them
        with pytest.warns(UserWarning, match="Duplicate name"):
            with zipfile.ZipFile(path, "w") as zf:
                for name, data in spec:
                    zf.writestr(name, data)
        return path
    return write_zip(path, spec)


@pytest.fixture
def marker(tmp_path, monkeypatch):
    """The file a pickle payload would create."""
    monkeypatch.setattr(Boom, "marker", str(tmp_path / "PWNED"))
    return tmp_path / "PWNED"


@pytest.fixture
def features(tmp_path):
    """Data to predict: 4 rows of 3 features."""
    path = tmp_path / "x.csv"
    np.savetxt(path, np.random.RandomState(0).standard_normal((4, 3)), delimiter=",", fmt="%.4f")
    return path


#: a zip bomb: 512 MiB of zeros deflated into ~2.3 MB, in a member the format never reads
BOMB_MIB = 512


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A valid model plus ``junk.npy``: a 512 MiB array of zeros deflated, written by streaming
    (never held in memory); ~0.6 s to build, once per module."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    n = BOMB_MIB * 2**20 // 8
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members(net_fields()).items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)
        with zf.open("junk.npy", "w", force_zip64=True) as fh:
            npy_format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
            zeros = bytes(2**20)
            for _ in range(BOMB_MIB):
                fh.write(zeros)
    assert os.path.getsize(path) < 3 * 2**20
    assert zipfile.ZipFile(path).getinfo("junk.npy").file_size > BOMB_MIB * 2**20
    return path


def predict(capsys, model, data, *extra):
    """``deltaprop predict`` in-process: (exit status, stdout, stderr)."""
    code = main(["predict", str(model), str(data), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("deltaprop predict: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ------------------------------------------------------------------ MLP.load and predict


@pytest.mark.parametrize("name", sorted(MALFORMED) + sorted(k for k, v in MEMORY_ATTACKS.items() if v[1]))
def test_a_malformed_file_is_a_value_error_naming_path_and_problem(name, tmp_path, marker, features, capsys):
    builder, message = MALFORMED[name] if name in MALFORMED else MEMORY_ATTACKS[name]
    path = build(tmp_path / f"{name}.npz", builder)
    with pytest.raises(ValueError, match=message) as info:
        MLP.load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    code, out, err = predict(capsys, path, features)
    assert_one_line_error(code, err, str(path))
    assert out == ""
    assert not marker.exists()  # no pickle payload ever ran


@pytest.mark.parametrize("name", [k for k, v in MEMORY_ATTACKS.items() if v[1] is None])
def test_members_the_format_does_not_need_are_never_read(name, tmp_path, features, capsys):
    path = build(tmp_path / f"{name}.npz", MEMORY_ATTACKS[name][0])
    assert MLP.load(path).layer_sizes == (3, 4, 3)
    code, out, err = predict(capsys, path, features)
    assert code == 0, err
    assert out.splitlines()[0] == "y0,y1,y2" and len(out.splitlines()) == 5


def test_a_zip_bomb_in_an_unused_member_is_never_inflated(bomb, features, capsys):
    assert MLP.load(bomb).layer_sizes == (3, 4, 3)
    code, _, err = predict(capsys, bomb, features)
    assert code == 0, err


def test_paths_that_are_not_files(tmp_path, features, capsys):
    with pytest.raises(FileNotFoundError):
        MLP.load(tmp_path / "none.npz")
    with pytest.raises(ValueError, match="not a deltaprop model file"):
        MLP.load(tmp_path)
    for path in (tmp_path / "none.npz", tmp_path):
        code, _, err = predict(capsys, path, features)
        assert_one_line_error(code, err, str(path))


# ------------------------------------------------------------------ the command line's members


@pytest.mark.parametrize("fields, message", [
    (cli_fields(classes=("a", "b")), "2 class labels for a network with 3 outputs (needs 3)"),
    (cli_fields(sizes=(3, 4, 1), classes=("a",)), "1 class labels for a network with 1 output (needs 2)"),
    (cli_fields(classes=()), "0 class labels for a network with 3 outputs"),
    (cli_fields(classes=(0.0, 1.0, np.nan)), "class labels contain NaN"),
    (cli_fields(task="regression", sizes=(3, 4, 1), classes=(), y_mean=np.float64(np.nan)), "y_mean is nan"),
    (cli_fields(task="regression", sizes=(3, 4, 1), classes=(), y_scale=np.float64(0.0)), "y_scale must be positive"),
    (cli_fields(task="regression", sizes=(3, 4, 2), classes=()), "a regression model has one network output"),
    (cli_fields(x_scale=np.array([1.0, 0.0, 1.0])), "x_scale must be positive and finite"),
    (cli_fields(x_scale=np.array([1.0, -1.0, 1.0])), "x_scale must be positive and finite"),
    (cli_fields(x_mean=np.array([0.0, np.inf, 0.0])), "x_mean contains NaN or infinity"),
    (cli_fields(x_mean=np.zeros(2)), "member 'x_mean' has shape (2,); expected (3,)"),
    (cli_fields(x_scale=np.ones((1, 3))), "member 'x_scale' has shape (1, 3); expected a 1-D array"),
    (cli_fields(y_mean=np.zeros(1)), "member 'y_mean' has shape (1,); expected a scalar"),
    (cli_fields(y_mean=np.str_("0")), "member 'y_mean' has dtype <U1; expected floats"),
    (cli_fields(task=np.str_("clustering")), "unknown task 'clustering'"),
    (cli_fields(feature_names=np.array(["a", "b"])), "2 feature names for a network with 3 inputs"),
    (cli_fields(feature_names=np.array(["a"] * 4)), "member 'feature_names' holds 4 values; at most 3 allowed"),
    (cli_fields(classes=np.array([Boom(), Boom(), Boom()], dtype=object)), "member 'classes' has an object dtype"),
    (cli_fields(classes=np.array(["a", "b", "c", "d", "e"])), "member 'classes' holds 5 values; at most 3 allowed"),
    (cli_fields(target_index=np.str_("last")), "member 'target_index' has dtype <U4; expected integers"),
    (cli_fields(cli_version=np.int64(2)), "incompatible deltaprop version (format 2, this one reads 1)"),
    (cli_fields(cli_format=np.str_("other.tool")), "unknown command-line format 'other.tool'"),
    ({k: v for k, v in cli_fields().items() if k != "x_scale"}, "model file is missing x_scale"),
], ids=lambda v: None if isinstance(v, dict) else v[:40])
def test_predict_checks_the_stored_preprocessing(fields, message, tmp_path, marker, features, capsys):
    path = write_zip(tmp_path / "m.npz", members(fields))
    code, out, err = predict(capsys, path, features)
    assert_one_line_error(code, err, str(path), message)
    assert out == "" and not marker.exists()


# ------------------------------------------------------------------ what must keep working


def test_np_savez_files_with_the_formats_members_load_and_predict(tmp_path, features, capsys):
    """np.savez of exactly the members of MLP.save's format and of version 1 of ``train --out``'s."""
    plain, clf, reg = tmp_path / "plain.npz", tmp_path / "clf.npz", tmp_path / "reg.npz"
    fields = net_fields()
    np.savez(plain, **fields)
    net = MLP.load(plain)
    np.testing.assert_array_equal(net.w, fields["w"])
    assert (net.layer_sizes, net.hidden, net.output, net.loss_function) == ((3, 4, 3), "tanh", "softmax",
                                                                            "cross_entropy")
    np.savez(clf, **cli_fields())
    np.savez(reg, **cli_fields(task="regression", sizes=(3, 4, 1), classes=(), y_mean=np.float64(10.0)))
    code, out, err = predict(capsys, clf, features, "--proba")
    assert code == 0, err
    assert out.splitlines()[0] == "prediction,p_a,p_b,p_c" and len(out.splitlines()) == 5
    code, out, err = predict(capsys, reg, features)
    assert code == 0, err
    assert len(out.splitlines()) == 5
    code, out, err = predict(capsys, plain, features)
    assert code == 0 and out.splitlines()[0] == "y0,y1,y2"


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_version_1_file_predicts_as_the_version_1_reader_did(task, tmp_path, features, capsys):
    """A file with only the version-1 members: predictions are the network's outputs on
    (X - x_mean) / x_scale, decoded as that reader did, and the rebuilt pipeline's too."""
    from sklearn.pipeline import Pipeline

    from deltaprop.cli import pipeline as savedmodel

    x_mean, x_scale = np.array([0.5, -1.0, 2.0]), np.array([2.0, 0.5, 3.0])
    if task == "classification":
        fields = cli_fields(x_mean=x_mean, x_scale=x_scale)
    else:
        fields = cli_fields(task="regression", sizes=(3, 4, 1), classes=(), x_mean=x_mean, x_scale=x_scale,
                            y_mean=np.float64(10.0), y_scale=np.float64(3.0))
    path = write_zip(tmp_path / "v1.npz", members(fields))
    X = np.loadtxt(features, delimiter=",")
    out = MLP.load(path).forward((X - x_mean) / x_scale)
    code, stdout, err = predict(capsys, path, features, "--proba")
    assert code == 0, err
    rows = [line.split(",") for line in stdout.splitlines()]
    pipe = savedmodel.load(path).model
    assert isinstance(pipe, Pipeline)
    if task == "classification":
        labels = np.array(["a", "b", "c"])[out.argmax(axis=1)]
        assert rows[0] == ["prediction", "p_a", "p_b", "p_c"]
        assert [r[0] for r in rows[1:]] == list(labels) == list(pipe.predict(X))
        assert [r[1:] for r in rows[1:]] == [[f"{p:.6g}" for p in row] for row in out]
        np.testing.assert_array_equal(pipe.predict_proba(X), out)
    else:
        values = out[:, 0] * 3.0 + 10.0
        assert rows == [["prediction"]] + [[repr(float(v))] for v in values]
        np.testing.assert_array_equal(pipe.predict(X), values)


def test_an_npz_data_file_is_read_as_untrusted_input_too(tmp_path, marker, capsys):
    X = np.random.RandomState(0).standard_normal((6, 3))
    pickled = write_zip(tmp_path / "pickled.npz", {"X.npy": npy(X), "y.npy": npy(np.array([Boom()] * 6, dtype=object))})
    huge = write_zip(tmp_path / "huge.npz", {"X.npy": npy_header("<f8", (10**12, 3), bytes(8))})
    for path, message in ((pickled, "member 'y' has an object dtype (a pickle)"),
                          (huge, "member 'X' holds 3000000000000 values")):
        code = main(["train", str(path), "-q"])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err, err
        assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
    assert not marker.exists()


def test_a_saved_model_round_trips_and_is_the_format(tmp_path):
    net = MLP([3, 5, 2], hidden="relu", output="logistic", loss="binary_cross_entropy", dtype="float32",
              random_state=1)
    net.save(tmp_path / "m.npz")
    back = MLP.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.w, net.w)
    assert back.w.dtype == np.float32 and back.layer_sizes == (3, 5, 2)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert sorted(data.files) == sorted(net_fields())
        assert str(data["format"]) == "deltaprop.MLP" and int(data["version"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_a_trained_model_round_trips_through_train_and_predict(tmp_path, features, capsys):
    data = tmp_path / "d.csv"
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, 3))
    np.savetxt(data, np.column_stack([X, X @ [1.0, 2.0, 3.0]]), delimiter=",", fmt="%.5f")
    assert main(["train", str(data), "--epochs", "2", "-q", "--out", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    code, out, err = predict(capsys, tmp_path / "m.npz", features)
    assert code == 0, err
    assert len(out.splitlines()) == 5


def test_one_atomic_write_cleans_up_after_an_interrupt(tmp_path, monkeypatch):
    from deltaprop import plots
    from deltaprop.cli import data as dataio
    from deltaprop.cli import pipeline as savedmodel
    from deltaprop.engine import modelfile, npzfile

    assert all(m.atomic_write is npzfile.atomic_write for m in (dataio, modelfile, plots, savedmodel))
    target = tmp_path / "m.npz"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with npzfile.atomic_write(target) as fh:
            fh.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        MLP([2, 1]).save(target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_any_error_reaching_main_is_one_line_and_debug_shows_it(monkeypatch, tmp_path, features, capsys):
    def out_of_memory(path):
        raise MemoryError("Unable to allocate 7.28 TiB for an array")

    monkeypatch.setattr(savedmodel, "load", out_of_memory)
    code, _, err = predict(capsys, tmp_path / "m.npz", features)
    assert_one_line_error(code, err, "MemoryError: Unable to allocate 7.28 TiB")
    monkeypatch.setattr(savedmodel, "load", lambda path: {}["no such key"])
    code, _, err = predict(capsys, tmp_path / "m.npz", features)
    assert_one_line_error(code, err, "KeyError")
    monkeypatch.setenv("DELTAPROP_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["predict", str(tmp_path / "m.npz"), str(features)])


def test_the_cli_never_calls_np_load_for_a_model(monkeypatch, tmp_path, features, capsys):
    np.savez(tmp_path / "m.npz", **cli_fields())

    def forbidden(*args, **kwargs):
        raise AssertionError("np.load called")

    monkeypatch.setattr(np, "load", forbidden)
    code, _, err = predict(capsys, tmp_path / "m.npz", features)
    assert code == 0, err
    assert MLP.load(tmp_path / "m.npz").layer_sizes == (3, 4, 3)


# ------------------------------------------------------------------ peak memory

# The child imports everything and runs one good prediction first (backends, numba's JIT or the
# Cython extension, BLAS threads), then caps its address space (RLIMIT_AS) at its VmSize at
# that point plus 200 MiB. VmSize, not resident memory, is what RLIMIT_AS counts, and it already
# includes the large reservations numba and BLAS make at import, so the cap is relative to it;
# 200 MiB is far less than any of the attacks claims (the smallest, 229 MiB of weights for
# layer_sizes [1e7, 3, 1]; the bomb inflates to 512 MiB) and far more than loading a small model
# needs. tracemalloc's peak (numpy reports its allocations to it) is checked too, as a bound that
# does not depend on the allocator: under 16 MiB per file.
CHILD = textwrap.dedent("""
    import contextlib, io, json, resource, sys, tracemalloc
    import numpy as np
    import deltaprop
    from deltaprop import cli
    good, data, paths = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["predict", good, data]) == 0
    deltaprop.MLP.load(good)
    vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + 200 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        np.ones(300 * 2**20 // 8)  # the cap works: 300 MiB more cannot be had
        capped = False
    except MemoryError:
        capped = True
    results = {"capped": capped}
    for path in paths:
        tracemalloc.start()
        try:
            deltaprop.MLP.load(path)
            outcome = "loaded"
        except Exception as exc:
            outcome = type(exc).__name__ + ": " + str(exc)[:200]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["predict", path, data])
        results[path] = {"load": outcome, "peak": peak, "predict": code, "stderr": err.getvalue()}
    print(json.dumps(results))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status: Linux")
def test_memory_attacks_stay_small_under_an_address_space_cap(tmp_path, bomb, features):
    good = write_zip(tmp_path / "good.npz", members(net_fields()))
    paths = {name: str(build(tmp_path / f"{name}.npz", builder)) for name, (builder, _) in MEMORY_ATTACKS.items()}
    paths["bomb"] = str(bomb)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(good), str(features), json.dumps(list(paths.values()))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results["capped"]
    for name, path in paths.items():
        result = results[path]
        message = MEMORY_ATTACKS[name][1] if name in MEMORY_ATTACKS else None
        if message is None:  # the attack is in a member the format never reads
            assert result["load"] == "loaded", (name, result)
            assert result["predict"] == 0, (name, result)
        else:
            assert result["load"].startswith("ValueError: "), (name, result)
            assert result["predict"] == 1 and len(result["stderr"].splitlines()) == 1, (name, result)
            assert "MemoryError" not in result["stderr"], (name, result)
        assert result["peak"] < 16 * 2**20, (name, result)
