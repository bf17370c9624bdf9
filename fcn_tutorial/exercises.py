"""Checkers for the book's exercises: is a student's function right, and if not, why not?

Each checker calls the student's function on a few worked cases, compares with the answer, and when
they differ tries the typical mistakes one by one so that the hint names the likely cause. A pass
prints "Correct! ..." and returns a :class:`CheckResult`::

    >>> def upsampled_size(size, kernel, stride, padding=0):
    ...     return (size - 1) * stride - 2 * padding + kernel
    >>> result = check_upsampled_size(upsampled_size)
    Correct! all 7 cases match nn.ConvTranspose2d.

A failure raises :class:`ExerciseFailed`, an ``AssertionError`` whose message is the hint, so that a
notebook shows the hint (alone, without a traceback) and an autograder (nbgrader, ``scripts/grade.py``)
counts the test as failed::

    >>> check_upsampled_size(lambda size, kernel, stride, padding=0: size * stride)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    fcn_tutorial.exercises.ExerciseFailed: Not yet: upsampled_size(7, kernel=64, stride=32, padding=0) gave 224, ...

With ``raise_on_failure=False`` the hint is printed and the failing result returned instead::

    >>> check_upsampled_size(lambda *sizes: 0, raise_on_failure=False).passed  # doctest: +ELLIPSIS
    Not yet: upsampled_size(7, kernel=64, stride=32, padding=0) gave 0, expected 256. Place the kernel at ...
    False
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .data import VOID


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker: ``passed`` and the friendly ``message`` it printed."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """Show nothing in a notebook: the checker has already printed its message."""


class ExerciseFailed(AssertionError):
    """A checker's verdict "not yet": the message is the hint. A notebook shows only that line."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the hint alone, not the checker's internals."""
        return [str(self)]


class _Mistake(Exception):
    """Raised inside a checker to stop at the first failed case with its hint."""


def _report(exercise: str, run: Callable[[], str], raise_on_failure: bool = True) -> CheckResult:
    """Run the checks of ``exercise``; turn a failure (or the student's own exception) into a hint.

    A pass prints "Correct! ..."; a failure raises :class:`ExerciseFailed` with the hint, or prints
    it and returns the failing result when ``raise_on_failure`` is False."""
    try:
        detail = run()
        result = CheckResult(True, f"Correct! {detail}")
    except _Mistake as mistake:
        result = CheckResult(False, f"Not yet: {mistake}")
    except NotImplementedError:
        result = CheckResult(False, f"Not yet: {exercise} is not implemented yet (it raised NotImplementedError).")
    except Exception as error:  # the student's code failed: say where, kindly
        result = CheckResult(False, f"Not yet: {exercise} raised {type(error).__name__}: {error}")
    if not result.passed and raise_on_failure:
        raise ExerciseFailed(result.message)
    print(result.message)
    return result


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, bool]:
    """``fn(*args, **kwargs)`` on copies of the tensors; also whether ``fn`` changed one of them in place."""
    copies = [arg.clone() if isinstance(arg, torch.Tensor) else arg for arg in args]
    result = fn(*copies, **kwargs)
    changed = any(
        isinstance(arg, torch.Tensor) and not (used.shape == arg.shape and torch.equal(used, arg))
        for arg, used in zip(args, copies)
    )
    return result, changed


def _changed_inputs(what: str) -> _Mistake:
    return _Mistake(
        f"the result is right, but {what} changed a tensor it was given (an in-place operation such as "
        "`x[...] = ...` or `x.add_()` on an input); work on new tensors, so that the caller's data stays as it was."
    )


def _name(fn: Callable[..., Any], default: str) -> str:
    """The name the student gave the function (``my_bilinear_kernel``), else the exercise's."""
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else default


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if value is None:
        raise _Mistake(f"{what} returned None; did you forget the `return`?")
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise _Mistake(f"{what} should return numbers, got {type(value).__name__} ({error})") from None


def _plain(value: Any) -> Any:
    """A tensor or numpy value as plain Python (``0-d`` -> a number, else nested lists); anything else as it is."""
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        return value.tolist()
    return value


def _as_int(value: Any, what: str) -> int:
    if value is None:
        raise _Mistake(f"{what} returned None; did you forget the `return`?")
    value = _plain(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise _Mistake(
                f"{what} returned {value}, which is not a whole number of pixels; "
                "use integer division `//`, which rounds down as PyTorch does."
            )
        raise _Mistake(f"{what} returned the float {value}; return an int (use `//` instead of `/`).")
    if not isinstance(value, int):
        raise _Mistake(f"{what} should return an int, got {type(value).__name__}")
    return int(value)


# --- feature-map sizes --------------------------------------------------------------------------------

_CONV_CASES = [  # (size, kernel, stride, padding)
    (224, 3, 1, 1),
    (224, 2, 2, 0),
    (7, 7, 1, 0),
    (530, 3, 1, 1),
    (265, 2, 2, 0),
    (33, 3, 2, 1),
    (15, 4, 3, 0),
    (100, 5, 2, 2),
    (9, 3, 2, 0),
]


def check_conv_output_size(fn: Callable[..., int], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(size, kernel, stride=1, padding=0)``: one side of a convolution's or pooling's output."""
    mistakes = [  # (the mistaken formula, its hint); a hint is named only when it explains every case
        (
            lambda size, k, s, p: (size - k) // s + 1,
            "The padding adds `padding` pixels on *both* sides: use size + 2 * padding.",
        ),
        (
            lambda size, k, s, p: (size + p - k) // s + 1,
            "Padding is added on both sides: size + 2 * padding, not size + padding.",
        ),
        (
            lambda size, k, s, p: math.ceil((size + 2 * p - k) / s) + 1,
            "PyTorch rounds down (floor) by default, not up: use `//`.",
        ),
        (
            lambda size, k, s, p: (size + 2 * p - k) // s,
            "Count the first position too: add 1 to the number of strides.",
        ),
    ]

    def run() -> str:
        answers = []
        for size, kernel, stride, padding in _CONV_CASES:
            want = (size + 2 * padding - kernel) // stride + 1
            got = fn(size, kernel, stride, padding)
            if isinstance(got, float) and got == want:
                raise _Mistake("the size is right but a float; return an int (use `//` instead of `/`).")
            answers.append(_as_int(got, f"conv_output_size({size}, {kernel}, {stride}, {padding})"))
        for (size, kernel, stride, padding), got in zip(_CONV_CASES, answers):
            want = (size + 2 * padding - kernel) // stride + 1
            if got == want:
                continue
            call = f"conv_output_size({size}, kernel={kernel}, stride={stride}, padding={padding})"
            where = f"{call} gave {got}, expected {want}"
            for mistake, hint in mistakes:
                if all(mistake(*case) == answer for case, answer in zip(_CONV_CASES, answers)):
                    raise _Mistake(f"{where}. {hint}")
            raise _Mistake(f"{where}. Count how many positions the kernel can take along the padded side.")
        return f"all {len(_CONV_CASES)} cases match PyTorch's formula."

    return _report("conv_output_size", run, raise_on_failure)


_UPSAMPLE_CASES = [  # (size, kernel, stride, padding)
    (7, 64, 32, 0),
    (14, 4, 2, 0),
    (16, 4, 2, 1),
    (1, 16, 8, 0),
    (10, 3, 2, 1),
    (5, 2, 2, 0),
    (12, 32, 16, 8),
]


def check_upsampled_size(fn: Callable[..., int], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(size, kernel, stride, padding=0)``: one side of a transposed convolution's output."""

    def run() -> str:
        for size, kernel, stride, padding in _UPSAMPLE_CASES:
            want = (size - 1) * stride - 2 * padding + kernel
            got = _as_int(fn(size, kernel, stride, padding), f"upsampled_size({size}, {kernel}, {stride}, {padding})")
            if got == want:
                continue
            call = f"upsampled_size({size}, kernel={kernel}, stride={stride}, padding={padding})"
            where = f"{call} gave {got}, expected {want}"
            if got == (size + 2 * padding - kernel) // stride + 1:
                raise _Mistake(
                    f"{where}. That is the convolution's formula; a transposed convolution runs "
                    "it backwards: (size - 1) * stride - 2 * padding + kernel."
                )
            if got == size * stride:
                raise _Mistake(
                    f"{where}. Not exactly size * stride: the last kernel placement sticks out "
                    "by kernel - stride pixels (before padding is cropped)."
                )
            if got == (size - 1) * stride + kernel:
                raise _Mistake(f"{where}. Padding *removes* 2 * padding pixels from a transposed convolution's output.")
            if got == size * stride - 2 * padding + kernel:
                raise _Mistake(f"{where}. There are size - 1 steps between size input positions, not size.")
            raise _Mistake(f"{where}. Place the kernel at every input position, `stride` apart, and measure the span.")
        return f"all {len(_UPSAMPLE_CASES)} cases match nn.ConvTranspose2d."

    return _report("upsampled_size", run, raise_on_failure)


def check_exact_upsampling(fn: Callable[[int], Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(factor) -> (kernel_size, stride, padding)``: a transposed convolution that enlarges every
    input side exactly ``factor`` times and, with a bilinear kernel, blends neighbouring inputs."""

    def run() -> str:
        factors, answers = [2, 3, 4, 5, 8, 16, 32], {}
        for factor in factors:
            got = _plain(fn(factor))
            if got is None:
                raise _Mistake("exact_upsampling returned None; did you forget the `return`?")
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                raise _Mistake(f"exact_upsampling({factor}) returned {got!r}; return (kernel_size, stride, padding).")
            kernel, stride, padding = (_as_int(value, f"exact_upsampling({factor})") for value in got)
            answers[factor] = (kernel, stride, padding)
            call = f"exact_upsampling({factor}) = ({kernel}, {stride}, {padding})"
            if stride != factor:
                raise _Mistake(
                    f"{call}: the stride sets the enlargement (each input pixel moves the kernel "
                    f"`stride` output pixels on), so the stride must be the factor, {factor}."
                )
            for size in [1, 7, 10, 13]:
                out = (size - 1) * stride - 2 * padding + kernel
                if out != size * factor:
                    raise _Mistake(
                        f"{call}: a side of {size} becomes {out}, not {size * factor}. The output side is "
                        "(in - 1) * stride - 2 * padding + kernel; for it to be in * factor for every "
                        "input, kernel - stride must equal 2 * padding."
                    )
            if kernel == stride:
                raise _Mistake(
                    f"{call}: the size is exact, but with kernel = stride the kernel copies do not "
                    "overlap, so nothing is blended: bilinear upsampling needs about 2 * factor."
                )
            if kernel != 2 * factor - factor % 2:
                raise _Mistake(
                    f"{call}: the size is exact, but the bilinear kernel of exercise 1 spans about 2 * factor "
                    "pixels (its (kernel + 1) // 2 must be the factor), and kernel - stride must be even "
                    "(it is 2 * padding): kernel = 2 * factor for an even factor, 2 * factor - 1 for an odd one."
                )
        layer = torch.nn.ConvTranspose2d(1, 1, *answers[8], bias=False)
        shape = tuple(layer(torch.zeros(1, 1, 9, 14)).shape[-2:])
        if shape != (72, 112):
            raise _Mistake(f"nn.ConvTranspose2d(1, 1, *exact_upsampling(8)) turns 9 x 14 into {shape}, not (72, 112).")
        return f"every factor of {factors} enlarges exactly, with a bilinear kernel of about 2 * factor."

    return _report("exact_upsampling", run, raise_on_failure)


# --- metrics ------------------------------------------------------------------------------------------


def _jaccard_cases() -> list[torch.Tensor]:
    return [
        torch.tensor([[50, 10], [5, 35]]),
        torch.tensor([[90, 2, 3], [4, 40, 1], [6, 0, 20]]),
        torch.tensor([[7, 0, 1], [0, 0, 0], [2, 0, 5]]),  # class 1 absent from truth and prediction: NaN
    ]


def check_jaccard_from_confusion(fn: Callable[[torch.Tensor], Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(confusion) -> per-class Jaccard`` for a ``C x C`` table (rows: truth, columns: prediction)."""

    def run() -> str:
        for confusion in _jaccard_cases():
            table = confusion.double()
            tp, predicted, actual = table.diag(), table.sum(0), table.sum(1)
            want = tp / (predicted + actual - tp)
            got = _as_tensor(fn(confusion.clone()), "jaccard_from_confusion")
            where = f"for the confusion matrix {confusion.tolist()} you returned {_fmt(got)}, expected {_fmt(want)}"
            if got.shape != want.shape:
                raise _Mistake(f"{where}. Return one value per class: a tensor of shape ({len(want)},).")
            if _close(got, want):
                continue
            present = ~want.isnan()
            if _close(got[present], want[present]):
                raise _Mistake(
                    f"{where}. A class that is neither in the truth nor in the prediction has no "
                    "union (0 / 0): return nan for it, not a number, so it does not count as 0 or 1."
                )
            if _close(got, tp / predicted) or _close(got, tp / predicted.clamp(min=1)):
                raise _Mistake(
                    f"{where}. You left out the false negatives (the rest of each class's row): "
                    "the union is TP + FP + FN."
                )
            if _close(got, tp / actual) or _close(got, tp / actual.clamp(min=1)):
                raise _Mistake(
                    f"{where}. You left out the false positives (the rest of each class's column): "
                    "the union is TP + FP + FN."
                )
            if _close(got, tp / table.sum()):
                raise _Mistake(f"{where}. Divide by the union of the class (TP + FP + FN), not by all pixels.")
            if _close(got, tp / (predicted + actual)):
                raise _Mistake(f"{where}. Row sum + column sum counts the true positives twice: subtract TP once.")
            if _close(got, 2 * tp / (predicted + actual)):
                raise _Mistake(f"{where}. That is the Dice score; the Jaccard index is TP / (TP + FP + FN).")
            if _close(got, torch.div(tp, predicted + actual - tp, rounding_mode="floor")):
                raise _Mistake(f"{where}. Integer division rounds to 0: convert the counts to float first.")
            raise _Mistake(
                f"{where}. Per class c: TP = confusion[c, c], FP = column c without TP, FN = row c without TP."
            )
        return "per-class Jaccard matches, including nan for an absent class."

    return _report("jaccard_from_confusion", run, raise_on_failure)


def _confusion(prediction: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    counted = target != VOID
    index = n_classes * target[counted] + prediction[counted]
    return torch.bincount(index, minlength=n_classes**2).reshape(n_classes, n_classes)


def _reshape_failed(n_classes: int, void: int, error: Exception) -> _Mistake:
    given = f"ignore_index={void} here, not 255" if void != VOID else "a target of 255"
    return _Mistake(
        f"the reshape to {n_classes} x {n_classes} failed ({error}). bincount returns max(index) + 1 counts: "
        f"leave out the void pixels ({given} makes the index too large), and pass minlength=n_classes**2 for "
        "classes that never occur."
    )


def check_confusion_matrix(fn: Callable[..., Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(prediction, target, n_classes, ignore_index=255)``: the ``C x C`` pixel counts (rows: truth,
    columns: prediction) of two label maps of any shape, without the void pixels."""

    def run() -> str:
        generator = torch.Generator().manual_seed(1)
        target = torch.randint(0, 2, (2, 9, 11), generator=generator)
        prediction = torch.randint(0, 2, (2, 9, 11), generator=generator)
        target[:, :2] = VOID
        three = torch.tensor([[0, 0, 1], [1, 1, 0]]), torch.tensor([[0, 1, 1], [1, VOID, 0]])  # class 2: absent
        seven = torch.tensor([0, 1, 1, 1, 0]), torch.tensor([7, 1, 0, 7, 0])  # void given as ignore_index=7
        cases = [(prediction, target, 2, VOID), (*three, 3, VOID), (prediction[0, 2:], target[0, 2:], 2, VOID)]
        for pred, truth, n_classes, void in [*cases, (*seven, 2, 7)]:
            counted = truth != void
            want = _confusion(pred[counted], truth[counted], n_classes).double()
            keyword = {} if void == VOID else {"ignore_index": void}
            try:
                answer, changed = _call(fn, pred, truth, n_classes, **keyword)
                got = _as_tensor(answer, "confusion_matrix")
            except TypeError as error:
                if "ignore_index" not in str(error):
                    raise
                raise _Mistake(f"keep the parameter ignore_index=255 of the exercise ({error}).") from None
            except ValueError as error:
                if "unpack" in str(error):
                    raise _Mistake(
                        f"{error} for label maps of shape {tuple(truth.shape)}: the maps can have any shape (one "
                        "image or a batch); flatten them first (`.flatten()` or `.reshape(-1)`)."
                    ) from None
                if "shape" not in str(error):
                    raise
                raise _reshape_failed(n_classes, void, error) from None
            except RuntimeError as error:
                if "shape" not in str(error):
                    raise
                raise _reshape_failed(n_classes, void, error) from None
            where = (
                f"for {n_classes} classes and {tuple(truth.shape)} label maps"
                + (f" with ignore_index={void}" if void != VOID else "")
                + f" you returned {_fmt(got)}, expected {_fmt(want)}"
            )
            if got.shape != want.shape:
                hint = (
                    "void pixels (target == 255) ended up in the table: keep only target != ignore_index."
                    if got.numel() > want.numel()
                    else f"return a {n_classes} x {n_classes} table even when a class never occurs "
                    "(torch.bincount's minlength, then reshape)."
                )
                raise _Mistake(f"{where}. Shape {tuple(got.shape)} instead of {tuple(want.shape)}: {hint}")
            if _close(got, want):
                if changed:
                    raise _changed_inputs("confusion_matrix")
                continue
            if _close(got, want.T):
                raise _Mistake(
                    f"{where}. Rows are the truth and columns the prediction: combine the labels as "
                    "n_classes * target + prediction."
                )
            if got.sum() > want.sum():
                given = "ignore_index, not always 255" if void != VOID else "ignore_index"
                raise _Mistake(
                    f"{where}. The table counts {int(got.sum())} pixels but only {int(want.sum())} are "
                    f"not void: leave out the pixels where target == {given}."
                )
            raise _Mistake(f"{where}. Entry [t, p] counts the non-void pixels with target t and prediction p.")
        return "the counts match, void pixels are left out, and absent classes keep their row and column."

    return _report("confusion_matrix", run, raise_on_failure)


def check_pixel_accuracy(fn: Callable[..., Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(prediction, target, ignore_index=255) -> float``: share of non-void pixels predicted right."""

    def run() -> str:
        generator = torch.Generator().manual_seed(0)
        target = torch.randint(0, 2, (2, 12, 16), generator=generator)
        target[:, :3] = VOID  # a void border, deeper in the second image: the images count unequally
        target[1, :8] = VOID
        prediction = torch.randint(0, 2, (2, 12, 16), generator=generator)
        prediction[:, :3] = 1 - prediction[:, :3]  # void pixels: any prediction at all
        seven = torch.tensor([0, 1, 1, 0, 1]), torch.tensor([7, 1, 0, 0, 7])
        cases = [
            (prediction, target, VOID),
            (target.clamp(max=1), target, VOID),
            (prediction[0, 3:], target[0, 3:], VOID),
        ]
        for pred, truth, void in [*cases, (*seven, 7)]:
            counted = truth != void
            want = (pred[counted] == truth[counted]).double().mean().item()
            keyword = {} if void == VOID else {"ignore_index": void}
            try:
                answer, changed = _call(fn, pred, truth, **keyword)
                got = _as_tensor(answer, "pixel_accuracy")
            except TypeError as error:
                if "ignore_index" not in str(error):
                    raise
                raise _Mistake(f"keep the parameter ignore_index=255 of the exercise ({error}).") from None
            if got.numel() != 1:
                raise _Mistake(f"pixel_accuracy returned {got.numel()} values; return one number for all pixels.")
            got = got.item()
            if abs(got - want) < 1e-6:
                if changed:
                    raise _changed_inputs("pixel_accuracy")
                continue
            where = f"you returned {got:.4f}, expected {want:.4f}" + (
                f" (with ignore_index={void})" if void != VOID else ""
            )
            if void != VOID and abs(got - (pred[truth != VOID] == truth[truth != VOID]).double().mean().item()) < 1e-6:
                raise _Mistake(f"{where}. Leave out the pixels where target == ignore_index, not always 255.")
            if abs(got - (pred == truth).double().mean().item()) < 1e-6:
                raise _Mistake(
                    f"{where}. Void pixels (target == ignore_index) must not count: leave them out "
                    "of the denominator too, i.e. divide by the number of non-void pixels."
                )
            if abs(got - ((pred == truth) | ~counted).double().mean().item()) < 1e-6:
                raise _Mistake(f"{where}. Void pixels were counted as correct; leave them out altogether.")
            if abs(got - 100 * want) < 1e-4:
                raise _Mistake(f"{where}. Return a share between 0 and 1, not a percentage.")
            if got == 0 < want:
                raise _Mistake(f"{where}. Integer division rounds the share down to 0: divide as floats (`/`).")
            if pred.dim() == 3:
                per_image = [(p[t != void] == t[t != void]).double().mean().item() for p, t in zip(pred, truth)]
                if abs(got - sum(per_image) / len(per_image)) < 1e-6:
                    raise _Mistake(
                        f"{where}. That is the mean of each image's accuracy; pool the non-void pixels of the "
                        "whole batch instead, so that every pixel counts once."
                    )
            raise _Mistake(f"{where}. Keep the pixels where target != ignore_index, then average prediction == target.")
        return "void pixels are ignored and the share is right."

    return _report("pixel_accuracy", run, raise_on_failure)


# --- data -------------------------------------------------------------------------------------------


def check_polyp_fraction(fn: Callable[[torch.Tensor], Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(mask) -> float``: the share of polyp pixels (class 1) among the non-void pixels."""

    def run() -> str:
        mask = torch.zeros(10, 10, dtype=torch.int64)
        mask[2:6, 2:7] = 1  # 20 polyp pixels
        mask[8:] = VOID  # 20 void pixels: 80 counted
        no_polyp = torch.zeros(6, 6, dtype=torch.int64)
        cases = [
            (mask, 20 / 80),
            (no_polyp, 0.0),
            (torch.ones(3, 4, dtype=torch.int64), 1.0),
            (torch.full((4, 4), VOID, dtype=torch.int64), float("nan")),
            (torch.tensor([[0, 1, 2], [2, 1, VOID]]), 2 / 5),  # a class 2 (as in CVC-912's masks3/): not polyp
        ]
        for case, want in cases:
            try:
                got, changed = _call(fn, case)
            except ZeroDivisionError:
                if not math.isnan(want):
                    raise
                raise _Mistake(
                    "an all-void mask has no pixel to count, so the share is 0 / 0: return nan "
                    "(`float('nan')` or `math.nan`) for it instead of dividing."
                ) from None
            if got is None and math.isnan(want):
                raise _Mistake("for an all-void mask you returned None: return nan (`float('nan')`), a number.")
            got = _as_tensor(got, "polyp_fraction")
            if got.numel() != 1:
                raise _Mistake(f"polyp_fraction returned {got.numel()} values; return one number per mask.")
            got = got.item()
            if (math.isnan(want) and math.isnan(got)) or abs(got - want) < 1e-6:
                if changed:
                    raise _changed_inputs("polyp_fraction")
                continue
            what = (
                "an all-void mask"
                if math.isnan(want)
                else f"a mask with {int((case == 1).sum())} polyp, "
                + (f"{int((case == 2).sum())} class-2, " if (case == 2).any() else "")
                + f"{int((case == VOID).sum())} void and {int((case == 0).sum())} background pixels"
            )
            where = f"for {what} you returned {got:.4f}, expected {want:.4f}"
            if math.isnan(want):
                raise _Mistake(
                    f"{where}. With no pixel left to count, the share is undefined: return nan, "
                    "not 0, so that it is not mistaken for a frame without polyp."
                )
            if abs(got - (case == 1).double().mean().item()) < 1e-6:
                raise _Mistake(f"{where}. Leave the void pixels out of the denominator: divide by mask != 255.")
            counted = (case != VOID).sum().item()
            if (
                abs(got - (case >= 1).double().mean().item()) < 1e-6
                or abs(got - (case >= 1).sum().item() / counted) < 1e-6
            ):
                raise _Mistake(f"{where}. Void (255) is not a polyp: test mask == 1, not mask > 0.")
            if abs(got - ((case >= 1) & (case != VOID)).sum().item() / counted) < 1e-6:
                raise _Mistake(f"{where}. Class 2 is not a polyp either: test mask == 1, not mask > 0.")
            if abs(got - 100 * want) < 1e-4:
                raise _Mistake(f"{where}. Return a share between 0 and 1, not a percentage.")
            if got == 0 < want < 1:
                raise _Mistake(f"{where}. Integer division rounds the share down to 0: divide as floats (`/`).")
            raise _Mistake(f"{where}. Count mask == 1 among the pixels with mask != 255.")
        return "void pixels are left out, and an all-void mask gives nan."

    return _report("polyp_fraction", run, raise_on_failure)


def check_random_crop(fn: Callable[..., Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(image, mask, size, generator) -> (image, mask)``: the same random window of both, padded
    with 0 / VOID at the bottom and right when the frame is too small, every position possible."""

    def position_frame(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
        cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
        image = torch.stack([(rows + 1) / 100, (cols + 1) / 100, torch.full_like(rows, 0.5)])
        mask = torch.randint(0, 2, (height, width), generator=torch.Generator().manual_seed(height * width))
        return image, mask

    def crop(image, mask, size, seed):
        out, changed = _call(fn, image, mask, size, torch.Generator().manual_seed(seed))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Mistake("random_crop should return a pair: (cropped image, cropped mask).")
        if changed:
            raise _Mistake(
                "random_crop changed the image or mask it was given (an in-place operation on an input); "
                "cut the crops from them, or from a padded copy, without writing into them."
            )
        return out

    def window(image_crop: torch.Tensor) -> tuple[int, int]:
        """(top, left) of a crop of position_frame's image, read from its first pixel (never padding)."""
        return round(image_crop[0, 0, 0].item() * 100) - 1, round(image_crop[1, 0, 0].item() * 100) - 1

    def padded(image, mask, size):
        """The frame as the exercise pads it: 0 / VOID below and to the right, up to ``size`` on each side."""
        height, width = max(image.shape[-2], size), max(image.shape[-1], size)
        canvas = torch.zeros(3, height, width, dtype=image.dtype)
        canvas[:, : image.shape[-2], : image.shape[-1]] = image
        labels = torch.full((height, width), VOID, dtype=mask.dtype)
        labels[: mask.shape[-2], : mask.shape[-1]] = mask
        return canvas, labels

    def check_frame(height: int, width: int, size: int, seeds: int) -> int:
        """Crop a ``height x width`` frame with ``seeds`` seeds; every window must be right and every one occur."""
        image, mask = position_frame(height, width)
        canvas, labels = padded(image, mask, size)
        small = height < size or width < size
        frame = f"a 3 x {height} x {width} frame cropped to {size} x {size}"
        seen = set()
        for seed in range(seeds):
            try:
                image_crop, mask_crop = crop(image, mask, size, seed)
            except (RuntimeError, ValueError, IndexError) as error:
                if not small:
                    raise
                raise _Mistake(
                    f"{frame} raised {type(error).__name__}: {error}. A frame smaller than the window "
                    "on a side must be padded first (0 for the image, VOID for the mask, at the bottom and right)."
                ) from None
            if tuple(image_crop.shape) != (3, size, size) or tuple(mask_crop.shape) != (size, size):
                pad = " Pad the frame first when a side is smaller than the window." if small else ""
                raise _Mistake(
                    f"{frame} gave shapes {tuple(image_crop.shape)} and {tuple(mask_crop.shape)}; expected "
                    f"(3, {size}, {size}) and ({size}, {size}).{pad}"
                )
            if image_crop.dtype != image.dtype or mask_crop.dtype != mask.dtype:
                raise _Mistake(
                    f"{frame} gave an image of {image_crop.dtype} and a mask of {mask_crop.dtype}; keep the "
                    f"input types ({image.dtype} and {mask.dtype}: the loss needs integer class labels), e.g. "
                    "torch.full(..., VOID, dtype=mask.dtype) for the padded mask."
                )
            top, left = window(image_crop)
            if not (0 <= top <= canvas.shape[-2] - size and 0 <= left <= canvas.shape[-1] - size) or not torch.equal(
                image_crop, canvas[:, top : top + size, left : left + size]
            ):
                if small and torch.equal(
                    image_crop[:, : min(height, size), : min(width, size)], image[:, :size, :size]
                ):
                    raise _Mistake(f"{frame}: pad the image with 0 (black), at the bottom and right.")
                raise _Mistake(
                    f"{frame}: the image crop is not one window of the frame"
                    + (" padded at the bottom and right (a smaller frame keeps its top-left place)" if small else "")
                    + "; slice image[:, top:top + size, left:left + size]."
                )
            if not torch.equal(mask_crop, labels[top : top + size, left : left + size]):
                if small and torch.equal(
                    mask_crop[: min(height, size), : min(width, size)],
                    labels[top : top + size, left : left + size][: min(height, size), : min(width, size)],
                ):
                    raise _Mistake(
                        f"{frame}: pad the mask with VOID (255), not with a class: the padding is not "
                        "background, and the loss must ignore it."
                    )
                raise _Mistake(
                    f"{frame}: the mask was cut at a different place than the image (the image window starts "
                    f"at ({top}, {left})): draw top and left once and use them for both."
                )
            seen.add((top, left))
        last_top, last_left = canvas.shape[-2] - size, canvas.shape[-1] - size
        tops, lefts = {top for top, _ in seen}, {left for _, left in seen}
        for side, drawn, last, name in (("top", tops, last_top, "H"), ("left", lefts, last_left, "W")):
            if drawn == set(range(last + 1)):
                continue
            if drawn == set(range(last)):
                raise _Mistake(
                    f"over {seeds} crops of {frame}, {side} never took its last value {last}: torch.randint's "
                    f"upper bound is exclusive, so draw from range({name} - size + 1)."
                )
            raise _Mistake(
                f"over {seeds} crops of {frame}, {side} took the values {sorted(drawn)}, not every one of "
                f"0 .. {last}: draw {side} from 0 to {name} - size of the (padded) frame, "
                f"with {name} = {canvas.shape[-2] if name == 'H' else canvas.shape[-1]} here."
            )
        return len(seen)

    def run() -> str:
        positions = check_frame(10, 12, 8, 300)
        for seed in range(5):
            image, mask = position_frame(10, 12)
            if not all(torch.equal(a, b) for a, b in zip(crop(image, mask, 8, seed), crop(image, mask, 8, seed))):
                raise _Mistake(
                    "two calls with identically seeded generators gave different crops: draw the position "
                    "with torch.randint(..., generator=generator)."
                )
        for height, width in ((5, 6), (5, 12), (12, 5)):  # smaller than the window on both sides, or on one
            check_frame(height, width, 8, 100)
        return (
            f"image and mask share the window, all {positions} positions occur, and frames smaller than the "
            "window on one side or both are padded."
        )

    return _report("random_crop", run, raise_on_failure)


# --- upsampling ---------------------------------------------------------------------------------------


def _off_centre_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """A typical mistake, to recognise it: the tent of ``fcn_tutorial.models.bilinear_kernel`` centred at
    ``factor - 1`` for even sizes too (the right centre for an even size is ``factor - 0.5``)."""
    factor = (kernel_size + 1) // 2
    ramp = 1 - (torch.arange(kernel_size, dtype=torch.float64) - (factor - 1)).abs() / factor
    wrong = ramp[:, None] * ramp[None, :]
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size, dtype=torch.float64)
    for channel in range(min(in_channels, out_channels)):
        weight[channel, channel] = wrong
    return weight


def check_bilinear_kernel(fn: Callable[[int, int, int], Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(in_channels, out_channels, kernel_size)``: the weight that makes a transposed
    convolution do bilinear upsampling (shape ``in x out x k x k``, channel c copied to channel c)."""
    from fcn_tutorial.models import bilinear_kernel

    name = _name(fn, "bilinear_kernel")

    def run() -> str:
        shapes = [(2, 2, 4), (3, 3, 16), (2, 2, 3), (21, 21, 64), (1, 1, 5), (3, 5, 4), (4, 2, 3)]
        for in_channels, out_channels, kernel_size in shapes:
            want = torch.as_tensor(bilinear_kernel(in_channels, out_channels, kernel_size), dtype=torch.float64)
            call = f"{name}({in_channels}, {out_channels}, {kernel_size})"
            try:
                got = _as_tensor(fn(in_channels, out_channels, kernel_size), name)
            except IndexError as error:
                if in_channels == out_channels:
                    raise
                raise _Mistake(
                    f"{call} raised IndexError: {error}. With different channel counts only the first "
                    "min(in_channels, out_channels) channels have a partner: set weight[c, c] for those c."
                ) from None
            if got.shape != want.shape:
                hint = (
                    " (a 2D kernel alone is not enough: the transposed convolution needs one per channel pair)"
                    if got.dim() == 2
                    else ""
                )
                raise _Mistake(
                    f"{call} has shape {tuple(got.shape)}, expected {tuple(want.shape)}: "
                    f"in_channels x out_channels x kernel_size x kernel_size{hint}."
                )
            if _close(got, want):
                continue
            eye = torch.eye(in_channels, out_channels, dtype=torch.bool)
            if in_channels > 1 and got[~eye].abs().max() > 0:
                if _close(got[eye], want[eye]):
                    raise _Mistake(
                        f"{call}: the kernel is also set between different channels. Channel c must be "
                        "upsampled from channel c only: weight[c, c] is the bilinear kernel, the rest is 0."
                    )
                raise _Mistake(f"{call}: weight[i, j] must be 0 for i != j (each channel is upsampled on its own).")
            if kernel_size % 2 == 0 and _close(got, _off_centre_kernel(in_channels, out_channels, kernel_size)):
                raise _Mistake(
                    f"{call}: for an even kernel size the centre lies between two pixels, at "
                    "factor - 0.5 (factor = (k + 1) // 2), not at factor - 1."
                )
            if _close(got / got.max(), want / want.max()):
                raise _Mistake(
                    f"{call}: the shape of the kernel is right but its scale is not: "
                    "use 1 - |i - centre| / factor in each direction, with no normalisation."
                )
            raise _Mistake(
                f"{call}: weight[c, c, i, j] = (1 - |i - centre| / factor) * (1 - |j - centre| / factor), "
                "with factor = (k + 1) // 2 and centre = factor - 1 (odd k) or factor - 0.5 (even k)."
            )
        return "the kernels match for odd and even sizes and several channel counts."

    return _report(name, run, raise_on_failure)


def check_crop_offsets(fn: Callable[[int, int], Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(height, width)``: the centre-crop offsets of the original FCN-8s (padding 100, floor
    pooling) for that input, compared with ``fcn_tutorial.models.crop_offsets``."""
    from fcn_tutorial.models import build_model, crop_offsets

    model = build_model("fcn8s", 2, preset="original", width=0.0625)
    name = _name(fn, "crop_offsets")

    def run() -> str:
        sizes = [(224, 224), (500, 574), (288, 384), (530, 622), (100, 100)]
        for height, width in sizes:
            want = crop_offsets(model, (height, width))
            got = fn(height, width)
            if got is None:
                raise _Mistake(f"{name} returned None; did you forget the `return`?")
            if not isinstance(got, dict) or set(got) != set(want):
                keys = sorted(got) if isinstance(got, dict) else type(got).__name__
                raise _Mistake(
                    f"for a {height} x {width} input you returned {keys!r}; return a dict with the keys "
                    f"{sorted(want)}, each a (top, left) pair, as crop_offsets does."
                )
            if _same_offsets(got, want):
                continue
            if _same_offsets(got, want, whole=False):
                raise _Mistake(
                    f"for a {height} x {width} input you returned {got!r}: offsets are whole pixels, so use "
                    "integer division `//` (the crop takes the centre, rounding down)."
                )
            raise _Mistake(
                f"for a {height} x {width} input you returned {got!r}, expected {want!r}. Follow the "
                "sizes through the network (conv1_1 pads 100, pools round down), then centre-crop: "
                "offset = (larger - smaller) // 2 at each skip and at the end."
            )
        return f"offsets match for {len(sizes)} input sizes."

    return _report(name, run, raise_on_failure)


# --- training -----------------------------------------------------------------------------------------


def _tiny_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 8, 8, generator=generator)
    masks = (images[:, 0] > 0.5).long()
    masks[:, 0, :] = VOID  # a void row: the loss must skip it
    model = nn.Conv2d(3, 2, 3, padding=1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model, images, masks


def _reference_step(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    lr: float,
    *,
    stale_grad: list[torch.Tensor] | None = None,
) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for parameter, stale in zip(model.parameters(), stale_grad or []):
        parameter.grad = stale.clone()
    if stale_grad is None:
        optimizer.zero_grad()
    loss = F.cross_entropy(model(images), masks, ignore_index=VOID)
    loss.backward()
    optimizer.step()
    return loss.item()


def check_training_step(fn: Callable[..., Any], *, raise_on_failure: bool = True) -> CheckResult:
    """Check ``fn(model, optimizer, images, masks) -> loss``: one optimisation step with the pixel-wise
    cross-entropy that ignores void (255) pixels; the loss must be returned as a number or a 0-d tensor."""

    def student_step(student: nn.Module, optimizer: torch.optim.Optimizer, images, masks) -> float:
        try:
            loss = fn(student, optimizer, images.clone(), masks.clone())
        except (IndexError, RuntimeError) as error:
            if "out of bounds" in str(error):
                raise _Mistake(
                    f"the loss failed on void pixels ({error}): pass ignore_index=255 to "
                    "F.cross_entropy so that pixels labelled 255 are skipped."
                ) from None
            raise
        loss = _as_tensor(loss.detach() if isinstance(loss, torch.Tensor) else loss, "training_step")
        if loss.numel() != 1:
            raise _Mistake(f"training_step returned {loss.numel()} values; return the batch's mean loss (one number).")
        return loss.item()

    def run() -> str:
        lr = 0.5
        model, images, masks = _tiny_batch()
        # The student's first step starts from a fresh model (no gradients yet), as in a training loop.
        student = copy.deepcopy(model)
        optimizer = torch.optim.SGD(student.parameters(), lr=lr)
        before = [parameter.detach().clone() for parameter in student.parameters()]
        loss = student_step(student, optimizer, images, masks)
        correct = copy.deepcopy(model)
        want_loss = _reference_step(correct, images, masks, lr)
        after = list(student.parameters())
        if all(torch.equal(a, b) for a, b in zip(after, before)):
            raise _Mistake("the weights did not change: call loss.backward() and then optimizer.step().")
        if abs(loss - want_loss) > 1e-5:
            raise _Mistake(
                f"the loss was {loss:.5f}, expected {want_loss:.5f} for "
                "F.cross_entropy(model(images), masks, ignore_index=255). Return the loss computed "
                "before the step, averaged over the non-void pixels."
            )
        if not _params_close(after, correct.parameters()):
            raise _Mistake(
                "the weights changed, but not as one SGD step on F.cross_entropy(model(images), masks, "
                "ignore_index=255) would change them: compute that loss, call backward(), then optimizer.step()."
            )
        # The second step: the gradients of the first must not leak into it. Zeroing them before the
        # backward pass or after the step both work; forgetting to zero them adds them up.
        first_gradients = [parameter.grad.clone() for parameter in correct.parameters()]
        clean, accumulated = copy.deepcopy(correct), copy.deepcopy(correct)
        _reference_step(clean, images, masks, lr)
        _reference_step(accumulated, images, masks, lr, stale_grad=first_gradients)
        student_step(student, optimizer, images, masks)
        if not _params_close(student.parameters(), clean.parameters()):
            if _params_close(student.parameters(), accumulated.parameters()):
                raise _Mistake(
                    "the first step was right, but the second used the first step's gradients too: call "
                    "optimizer.zero_grad() in every step (before loss.backward()), or the gradients add up."
                )
            raise _Mistake("the first step was right, but the second was not: each call must be one whole step.")
        # The step is right; does the loss go down over a few more steps too?
        losses = [loss] + [student_step(student, optimizer, images, masks) for _ in range(5)]
        if not losses[-1] < losses[0]:
            raise _Mistake(f"the loss did not decrease over seven steps ({losses[0]:.4f} -> {losses[-1]:.4f}).")
        return (
            f"two steps match SGD on the cross-entropy without void, and the loss falls "
            f"{losses[0]:.3f} -> {losses[-1]:.3f}."
        )

    return _report("training_step", run, raise_on_failure)


# --- helpers ------------------------------------------------------------------------------------------


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    return got.shape == want.shape and torch.allclose(got.double(), want.double(), atol=1e-6, equal_nan=True)


def _params_close(a, b) -> bool:
    return all(torch.allclose(x.detach(), y.detach(), atol=1e-6) for x, y in zip(a, b))


def _fmt(values: torch.Tensor) -> str:
    return "[" + ", ".join("nan" if math.isnan(v) else f"{v:.3f}" for v in values.flatten().tolist()) + "]"


def _same_offsets(got: Any, want: Any, whole: bool = True) -> bool:
    """Offsets compare equal as nested dicts / sequences of whole numbers, whatever container the student chose
    (tuples, lists, numpy arrays, tensors). ``whole=False``: truncate fractions (``/`` instead of ``//``)."""
    got = _plain(got)
    if isinstance(want, dict):
        return (
            isinstance(got, dict) and set(got) == set(want) and all(_same_offsets(got[k], want[k], whole) for k in want)
        )
    if isinstance(want, (list, tuple)):
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(want)
            and all(_same_offsets(g, w, whole) for g, w in zip(got, want))
        )
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return (got if whole else int(got)) == want and (not whole or float(got).is_integer())
