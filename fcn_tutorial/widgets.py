"""Interactive views for the notebooks (ipywidgets), each with a static form for the web site.

* :class:`DataBrowser`: step through a data set's frames, with the mask drawn over, outlined or apart.
* :class:`PredictionViewer`: a prediction next to the ground truth, with an adjustable overlay.
* :class:`ArchitectureExplorer`: type an input size, read every layer's output shape and the crop offsets.

Each class keeps its state in plain attributes and changes it with plain methods (``show(index)``,
``set_alpha(alpha)``, ``set_size(height, width)``); the sliders only call those methods. So the views
can be tested without a browser, and ``figure()`` / ``static()`` draw the same thing for the site,
which cannot run widgets::

    browser = DataBrowser(data.train)
    browser.figure(indices=range(6))    # a matplotlib Figure for the page
    browser.widget()                    # the interactive version in a running notebook

The widgets work with ipywidgets 7.7 (what Google Colab preinstalls) and 8: they use only controls and
traits that both have (``value``, ``description``, ``disabled``, ``observe(..., names="value")``), not 8's
additions such as ``tooltip`` or ``TagsInput``. tests/test_colab.py runs the widget tests on 7.7.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from .plotting import (
    DPI,
    VOID,
    colorize,
    fit_figsize,
    outline,
    overlay,
    show_pairs,
    show_predictions,
    to_image_array,
    to_label_array,
)


def png_bytes(picture: np.ndarray) -> bytes:
    """An ``H x W x 3`` float picture in ``[0, 1]`` as PNG bytes (what an ``ipywidgets.Image`` shows)."""
    buffer = io.BytesIO()
    Image.fromarray((np.clip(picture, 0, 1) * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return float(alpha)


def _check_index(index: int, count: int, what: str) -> int:
    if not 0 <= index < count:
        raise IndexError(f"{what} {index} is out of range: there are {count} (0 to {count - 1})")
    return int(index)


class DataBrowser:
    """Browse the ``(image, mask)`` pairs of a data set.

    ``mode`` chooses the view: ``"overlay"`` (mask painted over the frame, ``alpha`` its strength),
    ``"outline"`` (the mask's border on the frame), ``"mask"`` (the mask alone) or ``"frame"``.
    """

    MODES = ("overlay", "outline", "mask", "frame")

    def __init__(self, dataset: Sequence, *, mode: str = "overlay", alpha: float = 0.5) -> None:
        if len(dataset) == 0:
            raise ValueError("DataBrowser needs a data set with at least one (image, mask) pair")
        self.dataset = dataset
        self.index = 0
        self.mode = self._check_mode(mode)
        self.alpha = _check_alpha(alpha)
        self._controls: dict[str, Any] = {}

    def _check_mode(self, mode: str) -> str:
        if mode not in self.MODES:
            raise ValueError(f"unknown view {mode!r}; choose one of {', '.join(self.MODES)}")
        return mode

    # --- state changes (the widget's callbacks call these) ---
    def show(self, index: int) -> None:
        self.index = _check_index(index, len(self.dataset), "frame")
        self._refresh()

    def set_mode(self, mode: str) -> None:
        self.mode = self._check_mode(mode)
        self._refresh()

    def set_alpha(self, alpha: float) -> None:
        self.alpha = _check_alpha(alpha)
        self._refresh()

    # --- drawing ---
    def render(self, index: int | None = None) -> np.ndarray:
        """The picture of frame ``index`` (default: the current one) in the current view."""
        image, mask = self.dataset[self.index if index is None else index]
        if self.mode == "overlay":
            return overlay(image, mask, alpha=self.alpha)
        if self.mode == "outline":
            return outline(image, mask)
        if self.mode == "mask":
            return colorize(mask)
        return to_image_array(image)

    def caption(self, index: int | None = None) -> str:
        index = self.index if index is None else index
        image, mask = self.dataset[index]
        labels = to_label_array(mask)
        counted = labels != VOID
        share = (labels[counted] == 1).mean() if counted.any() else float("nan")
        return (
            f"frame {index + 1} of {len(self.dataset)}: {labels.shape[0]} x {labels.shape[1]} pixels, polyp {share:.1%}"
        )

    def figure(self, indices: Sequence[int] | range | None = None) -> Figure:
        """A static grid of frames (default: the first four) for the web site."""
        indices = list(range(min(4, len(self.dataset)))) if indices is None else list(indices)
        if self.mode == "overlay":
            return show_pairs(self.dataset, indices=indices, alpha=self.alpha)
        fig, axes = plt.subplots(1, len(indices), figsize=fit_figsize(2.5 * len(indices), 2.8), dpi=DPI, squeeze=False)
        for axis, index in zip(axes[0], indices):
            axis.imshow(self.render(index))
            axis.set_title(f"#{index}")
            axis.set_axis_off()
        fig.tight_layout()
        return fig

    def widget(self):
        """The interactive browser: a frame slider, a view switch and an overlay-strength slider."""
        import ipywidgets as widgets

        slider = widgets.IntSlider(
            value=self.index, min=0, max=len(self.dataset) - 1, description="frame", continuous_update=False
        )
        mode = widgets.ToggleButtons(options=self.MODES, value=self.mode, description="view")
        alpha = widgets.FloatSlider(
            value=self.alpha, min=0.0, max=1.0, step=0.05, description="alpha", continuous_update=False
        )
        picture = widgets.Image(format="png")
        caption = widgets.Label()
        slider.observe(lambda change: self.show(change["new"]), names="value")
        mode.observe(lambda change: self.set_mode(change["new"]), names="value")
        alpha.observe(lambda change: self.set_alpha(change["new"]), names="value")
        self._controls = {"slider": slider, "mode": mode, "alpha": alpha, "image": picture, "caption": caption}
        self._refresh()
        return widgets.VBox([widgets.HBox([slider, alpha]), mode, picture, caption])

    def _refresh(self) -> None:
        if self._controls:
            self._controls["image"].value = png_bytes(self.render())
            self._controls["caption"].value = self.caption()
            self._controls["alpha"].disabled = self.mode != "overlay"


class PredictionViewer:
    """A model's prediction next to the ground truth, frame by frame.

    ``predictions`` is one sequence of label maps (or ``C x H x W`` scores) or a mapping
    ``{"FCN-32s": [...], "FCN-8s": [...]}``; ``model`` chooses which one the viewer shows. The third
    panel marks the errors: missed polyp pixels (false negatives) in yellow, false alarms in blue.
    """

    MISSED = (1.0, 0.85, 0.0)
    FALSE_ALARM = (0.1, 0.5, 1.0)

    def __init__(
        self,
        images: Sequence[Any],
        masks: Sequence[Any],
        predictions: Mapping[str, Sequence[Any]] | Sequence[Any],
        *,
        alpha: float = 0.5,
    ) -> None:
        self.predictions = dict(predictions) if isinstance(predictions, Mapping) else {"prediction": predictions}
        if len(images) == 0:
            raise ValueError("PredictionViewer needs at least one image")
        if len(masks) != len(images):
            raise ValueError(f"got {len(images)} images but {len(masks)} masks")
        for name, column in self.predictions.items():
            if len(column) != len(images):
                raise ValueError(f"{name}: {len(column)} predictions for {len(images)} images")
        self.images, self.masks = images, masks
        self.index = 0
        self.model = next(iter(self.predictions))
        self.alpha = _check_alpha(alpha)
        self._controls: dict[str, Any] = {}

    def show(self, index: int) -> None:
        self.index = _check_index(index, len(self.images), "image")
        self._refresh()

    def set_model(self, name: str) -> None:
        if name not in self.predictions:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(self.predictions)}")
        self.model = name
        self._refresh()

    def set_alpha(self, alpha: float) -> None:
        self.alpha = _check_alpha(alpha)
        self._refresh()

    def errors(self, index: int | None = None) -> np.ndarray:
        """Frame ``index`` with missed polyp pixels in yellow and false alarms in blue (void ignored)."""
        index = self.index if index is None else index
        truth = to_label_array(self.masks[index])
        predicted = to_label_array(self.predictions[self.model][index])
        picture = to_image_array(self.images[index]) * 0.6
        counted = truth != VOID
        picture[counted & (truth > 0) & (predicted != truth)] = self.MISSED
        picture[counted & (truth == 0) & (predicted > 0)] = self.FALSE_ALARM
        return picture

    def jaccard(self, index: int | None = None) -> float:
        """Polyp Jaccard index of frame ``index`` (nan when the polyp is in neither map)."""
        index = self.index if index is None else index
        truth = to_label_array(self.masks[index])
        predicted = to_label_array(self.predictions[self.model][index])
        counted = truth != VOID
        union = ((truth == 1) | (predicted == 1))[counted].sum()
        return float(((truth == 1) & (predicted == 1))[counted].sum() / union) if union else float("nan")

    def render(self, index: int | None = None) -> np.ndarray:
        """Ground truth over the frame | prediction over the frame | errors, side by side."""
        index = self.index if index is None else index
        image = self.images[index]
        panels = [
            overlay(image, self.masks[index], alpha=self.alpha),
            overlay(image, self.predictions[self.model][index], alpha=self.alpha),
            self.errors(index),
        ]
        gap = np.ones((panels[0].shape[0], 4, 3), dtype=np.float32)
        return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)

    def caption(self) -> str:
        return (
            f"image {self.index + 1} of {len(self.images)}, {self.model}: polyp Jaccard "
            f"{self.jaccard():.3f} (left: truth, middle: prediction, right: missed yellow, false alarm blue)"
        )

    def figure(self, indices: Sequence[int] | range | None = None) -> Figure:
        """A static figure for the site: every model's prediction beside the ground truth."""
        indices = list(range(min(3, len(self.images)))) if indices is None else list(indices)
        return show_predictions(
            [self.images[i] for i in indices],
            [self.masks[i] for i in indices],
            {name: [column[i] for i in indices] for name, column in self.predictions.items()},
            alpha=self.alpha,
        )

    def widget(self):
        """The interactive viewer: an image slider, a model choice and an overlay-strength slider."""
        import ipywidgets as widgets

        slider = widgets.IntSlider(
            value=self.index, min=0, max=len(self.images) - 1, description="image", continuous_update=False
        )
        model = widgets.Dropdown(options=list(self.predictions), value=self.model, description="model")
        alpha = widgets.FloatSlider(
            value=self.alpha, min=0.0, max=1.0, step=0.05, description="alpha", continuous_update=False
        )
        picture = widgets.Image(format="png")
        caption = widgets.Label()
        slider.observe(lambda change: self.show(change["new"]), names="value")
        model.observe(lambda change: self.set_model(change["new"]), names="value")
        alpha.observe(lambda change: self.set_alpha(change["new"]), names="value")
        self._controls = {"slider": slider, "model": model, "alpha": alpha, "image": picture, "caption": caption}
        self._refresh()
        return widgets.VBox([widgets.HBox([slider, model, alpha]), picture, caption])

    def _refresh(self) -> None:
        if self._controls:
            self._controls["image"].value = png_bytes(self.render())
            self._controls["caption"].value = self.caption()


class ArchitectureExplorer:
    """Every layer's output shape, and the crop offsets, of an FCN for an input size you choose.

    Uses :func:`fcn_tutorial.models.summary` and :func:`fcn_tutorial.models.crop_offsets`; the model
    is built once, on PyTorch's "meta" device (shapes without weights, so even width 1.0 is instant),
    and only the input size changes.
    """

    def __init__(
        self,
        name: str = "fcn8s",
        preset: str = "paper",
        *,
        width: float = 1.0,
        n_classes: int = 2,
        input_size: tuple[int, int] = (224, 224),
    ) -> None:
        from .models import build_model

        self.name, self.preset = name, preset
        with torch.device("meta"):  # shapes only: no memory for the weights, no time to initialise them
            self.model = build_model(name, n_classes, preset=preset, width=width).eval()
        self.height, self.width = self._check_size(*input_size)
        self._controls: dict[str, Any] = {}

    @staticmethod
    def _check_size(height: int, width: int) -> tuple[int, int]:
        if height < 1 or width < 1:
            raise ValueError(f"input size must be positive, got {height} x {width}")
        return int(height), int(width)

    def set_size(self, height: int, width: int) -> None:
        self.height, self.width = self._check_size(height, width)
        self._refresh()

    def summary(self):
        """The ``models.summary`` of the model for the current input size (one row per layer call)."""
        from .models import summary

        return summary(self.model, (self.height, self.width))

    def offsets(self) -> dict[str, tuple[int, int]]:
        """Where each skip and the final crop cut their window, ``{name: (top, left)}``."""
        from .models import crop_offsets

        return crop_offsets(self.model, (self.height, self.width))

    def static(self) -> str:
        """The table as HTML, for the site (display it with ``IPython.display.HTML``)."""
        title = f"<b>{html.escape(self.name)}</b> ({html.escape(self.preset)}), input {self.height} x {self.width}"
        try:
            table, offsets = self.summary()._repr_html_(), self.offsets()
        except ValueError as error:  # an input too small for this preset, for example
            return f"<p>{title}: {html.escape(str(error))}</p>"
        crops = ", ".join(f"{name} ({top}, {left})" for name, (top, left) in offsets.items()) or "none"
        return f"<p>{title}; crop offsets (top, left): {html.escape(crops)}</p>{table}"

    def _repr_html_(self) -> str:
        return self.static()

    def widget(self):
        """The interactive explorer: input height and width in, the table out."""
        import ipywidgets as widgets

        height = widgets.BoundedIntText(value=self.height, min=1, max=4096, description="height")
        width = widgets.BoundedIntText(value=self.width, min=1, max=4096, description="width")
        table = widgets.HTML()
        height.observe(lambda change: self.set_size(change["new"], self.width), names="value")
        width.observe(lambda change: self.set_size(self.height, change["new"]), names="value")
        self._controls = {"height": height, "width": width, "table": table}
        self._refresh()
        return widgets.VBox([widgets.HBox([height, width]), table])

    def _refresh(self) -> None:
        if self._controls:
            self._controls["table"].value = self.static()
