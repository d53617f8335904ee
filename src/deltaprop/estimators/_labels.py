"""Class labels as the classifier's targets: scikit-learn's LabelBinarizer, with one ``np.unique`` for plain labels.

Design
------
:class:`sklearn.preprocessing.LabelBinarizer` checks its input with ``type_of_target`` in
``fit``, in ``unique_labels`` and twice more in ``transform``. For *plain* labels, a 1-D
ndarray of booleans, integers or integral floats (no negative zero), every check has a known
answer: the type is ``"binary"`` (at most two classes) or ``"multiclass"``, the classes are
the sorted unique values in y's dtype, and sample n's target is the indicator of its class
(a single column, the indicator of ``classes_[1]``, for two classes or one). One
``np.unique(y, return_inverse=True)`` gives all of it, and the binarizer is the fitted
LabelBinarizer with the same attributes (``y_type_``, ``sparse_input_``, ``classes_``), so
pickles, ``inverse_transform`` and the code that reads it see no difference.

Everything else (multilabel indicators, strings, objects, continuous values, sparse or empty
input) goes through LabelBinarizer itself and raises its errors.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import unique_labels

__all__ = ["PLAIN_KINDS", "Codes", "plain_codes", "fit_binarizer", "class_labels", "binarize", "decode"]

#: the dtype kinds of plain labels: booleans, signed and unsigned integers, floats
PLAIN_KINDS = "biuf"
#: the LabelBinarizer types of plain labels
PLAIN_TYPES = ("binary", "multiclass")


class Codes(NamedTuple):
    """Plain labels as their sorted classes and each sample's class index: ``classes[inverse] == y``."""

    classes: np.ndarray
    inverse: np.ndarray


def plain_codes(y: object) -> Codes | None:
    """``np.unique(y, return_inverse=True)`` when y holds plain labels, else None.

    Plain labels are a non-empty 1-D ndarray of booleans, integers or floats, the floats all
    integral (``type_of_target``'s test: equal to their int64 cast) and none a negative zero
    (whose sign in ``classes_`` would depend on how scikit-learn finds the unique values).

    Parameters
    ----------
    y : object
        Labels, as the estimator received them after validation.

    Returns
    -------
    Codes or None
        The sorted classes (y's dtype) and the index of each sample's class (intp).
    """
    if type(y) is not np.ndarray or y.ndim != 1 or y.shape[0] == 0 or y.dtype.kind not in PLAIN_KINDS:
        return None
    classes, inverse = np.unique(y, return_inverse=True)
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):  # values beyond int64 cast to garbage: not integral
            integral = np.array_equal(classes, classes.astype(np.int64).astype(y.dtype))
        if not integral:
            return None
        if classes[0] <= 0 <= classes[-1] and np.any(np.signbit(y) & (y == 0)):
            return None
    return Codes(classes, inverse.reshape(-1))


def fit_binarizer(y: object) -> tuple[LabelBinarizer, Codes | None]:
    """``LabelBinarizer().fit(y)``, and y's codes when its labels are plain.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        The targets (a 0/1 indicator matrix for multilabel targets).

    Returns
    -------
    binarizer : LabelBinarizer
        Fitted to y (from the codes for plain labels, by its own ``fit`` otherwise).
    codes : Codes or None
        y's classes and indices for :func:`binarize`; None when y is not plain.

    Raises
    ------
    ValueError
        LabelBinarizer's errors (multi-output or continuous targets, no samples).
    """
    codes = plain_codes(y)
    if codes is None:
        return LabelBinarizer().fit(y), None
    binarizer = LabelBinarizer()
    binarizer.y_type_ = "binary" if codes.classes.shape[0] <= 2 else "multiclass"
    binarizer.sparse_input_ = False
    binarizer.classes_ = codes.classes
    return binarizer, codes


def class_labels(y: object) -> tuple[np.ndarray, Codes | None]:
    """``unique_labels(y)``, and y's codes when its labels are plain.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)

    Returns
    -------
    classes : ndarray
        The sorted unique labels of y.
    codes : Codes or None
        y's classes and indices for :func:`binarize`; None when y is not plain.

    Raises
    ------
    ValueError
        ``unique_labels``'s errors (unknown or mixed label types).
    """
    codes = plain_codes(y)
    if codes is None:
        return unique_labels(y), None
    return codes.classes, codes


def binarize(binarizer: LabelBinarizer, y: object, codes: Codes | None = None) -> np.ndarray:
    """The network's targets: ``binarizer.transform(y)`` as booleans, of shape (n, K).

    With the codes of plain y (:func:`plain_codes`) whose classes are among the binarizer's,
    of the same dtype, the targets are the indicators of each sample's class: K columns for
    K ≥ 3 classes, one column (the indicator of ``classes_[1]``; all False for a single
    class) otherwise, as ``label_binarize`` gives them. Otherwise ``binarizer.transform``
    computes them.

    Parameters
    ----------
    binarizer : LabelBinarizer
        Fitted.
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        The labels the codes belong to.
    codes : Codes or None, default=None
        y's classes and indices.

    Returns
    -------
    ndarray of shape (n_samples, K), bool

    Raises
    ------
    ValueError
        LabelBinarizer's errors for targets it cannot encode.
    """
    classes = binarizer.classes_
    if (codes is not None and binarizer.y_type_ in PLAIN_TYPES and not binarizer.sparse_input_
            and codes.classes.dtype == classes.dtype):
        index = _indices_into(classes, codes)
        if index is not None:
            K = classes.shape[0]
            if K <= 2:
                return (index == 1).reshape(-1, 1)
            return index[:, None] == np.arange(K)
    Y = binarizer.transform(y).astype(bool)
    return Y.reshape(-1, 1) if Y.ndim == 1 else Y


def _indices_into(classes: np.ndarray, codes: Codes) -> np.ndarray | None:
    """Each sample's index into ``classes`` (sorted), or None if one of its classes is not there."""
    if codes.classes is classes:
        return codes.inverse
    where = np.searchsorted(classes, codes.classes)
    if where[-1] >= classes.shape[0] or not np.array_equal(classes[where], codes.classes):
        return None
    return where[codes.inverse]


def decode(binarizer: LabelBinarizer, out: np.ndarray) -> np.ndarray:
    """Labels of the network's outputs: ``binarizer.inverse_transform(out)``.

    For binary and multiclass binarizers and float32 / float64 outputs, the class of the
    largest output (multiclass, the first on ties) or of the single output against the
    threshold 0.5 (``classes_[1]`` where it exceeds 0.5, else ``classes_[0]``), as
    LabelBinarizer decodes them; otherwise ``inverse_transform`` itself.

    Parameters
    ----------
    binarizer : LabelBinarizer
        Fitted.
    out : ndarray of shape (n_samples,) or (n_samples, K)
        The network's outputs (or binarised targets).

    Returns
    -------
    ndarray of shape (n_samples,), or (n_samples, n_labels) for a multilabel binarizer
    """
    classes = binarizer.classes_
    if (binarizer.sparse_input_ or binarizer.y_type_ not in PLAIN_TYPES or type(out) is not np.ndarray
            or out.dtype not in (np.float32, np.float64)):
        return binarizer.inverse_transform(out)
    if binarizer.y_type_ == "multiclass" and out.ndim == 2:
        return classes[np.clip(np.argmax(out, axis=1), 0, classes.shape[0] - 1)]
    if binarizer.y_type_ == "binary" and (out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)):
        if classes.shape[0] == 1:
            return np.repeat(classes[0], out.shape[0])
        return classes[(out.reshape(-1) > 0.5).astype(np.intp)]
    return binarizer.inverse_transform(out)
