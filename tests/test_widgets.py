"""Plotting helpers and the notebook widgets: the callbacks are plain methods, tested without a browser."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fcn_tutorial import plotting  # noqa: E402
from fcn_tutorial.plotting import overlay, show_pair, show_pairs, show_predictions  # noqa: E402
from fcn_tutorial.widgets import ArchitectureExplorer, DataBrowser, PredictionViewer, png_bytes  # noqa: E402

VOID = 255


def pair(seed: int, height: int = 24, width: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(3, height, width, generator=generator)
    mask = torch.zeros(height, width, dtype=torch.int64)
    mask[4 + seed : 14 + seed, 6:20] = 1
    mask[0] = VOID
    return image, mask


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --- plotting ---------------------------------------------------------------------------------------


def test_overlay_paints_polyp_void_and_keeps_background():
    image, mask = pair(0)
    picture = overlay(image, mask, alpha=0.5, color=(1.0, 0.0, 0.0))
    assert picture.shape == (24, 32, 3) and picture.dtype == np.float32
    frame = image.permute(1, 2, 0).numpy()
    background = (mask == 0).numpy()
    np.testing.assert_allclose(picture[background], frame[background], atol=1e-6)
    polyp = (mask == 1).numpy()
    np.testing.assert_allclose(picture[polyp], 0.5 * frame[polyp] + 0.5 * np.array([1.0, 0.0, 0.0]), atol=1e-6)
    np.testing.assert_allclose(picture[0], 0.5 * frame[0] + 0.5 * 0.5, atol=1e-6)  # void: grey
    np.testing.assert_allclose(overlay(image, mask, alpha=0.0), frame, atol=1e-6)


def test_overlay_accepts_arrays_and_scores_and_rejects_mismatched_sizes():
    image, mask = pair(1)
    scores = torch.stack([(mask != 1).float(), (mask == 1).float()])  # 2 x H x W, argmax = the polyp
    as_array = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    np.testing.assert_allclose(overlay(as_array, scores), overlay(image, scores), atol=1 / 255)
    with pytest.raises(ValueError, match="mask is 24x31 but its image is 24x32"):
        overlay(image, mask[:, :31])
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, mask, alpha=1.5)


def test_outline_marks_only_the_border():
    image, mask = pair(0)
    picture = plotting.outline(torch.zeros_like(image), mask, color=(0.0, 1.0, 0.0), thickness=1)
    painted = picture[..., 1] > 0
    assert painted[4, 6:20].all() and painted[13, 6:20].all()  # top and bottom rows of the polyp
    assert not painted[8, 10]  # inside
    assert not painted[0].any()  # void is not a region


def test_figures_have_one_panel_per_image_and_model():
    pairs = [pair(seed) for seed in range(3)]
    images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    assert len(show_pair(*pairs[0], title="x").axes) == 3
    assert len(show_pairs(images, masks).axes) == 6
    assert len(show_pairs(pairs, indices=[0, 2]).axes) == 4  # a data set of pairs
    fig = show_predictions(images, masks, {"FCN-32s": masks, "FCN-8s": masks})
    assert isinstance(fig, Figure) and len(fig.axes) == 3 * 4
    assert [axis.get_title() for axis in fig.axes[:4]] == ["frame", "ground truth", "FCN-32s", "FCN-8s"]
    with pytest.raises(ValueError, match="FCN-8s: 2 predictions for 3 images"):
        show_predictions(images, masks, {"FCN-8s": masks[:2]})
    for figure in map(plt.figure, plt.get_fignums()):  # the book's figures are at most 10 x 4 inches
        width, height = figure.get_size_inches()
        assert width <= 10 + 1e-9 and height <= 4 + 1e-9


# --- DataBrowser ------------------------------------------------------------------------------------


def test_data_browser_slider_changes_the_picture():
    browser = DataBrowser([pair(seed) for seed in range(4)])
    browser.widget()
    controls = browser._controls
    first, caption = controls["image"].value, controls["caption"].value
    controls["slider"].value = 2  # what dragging the slider does
    assert browser.index == 2
    assert controls["image"].value != first
    assert controls["caption"].value.startswith("frame 3 of 4") and controls["caption"].value != caption
    assert controls["image"].value == png_bytes(browser.render())


def test_data_browser_views_and_alpha():
    browser = DataBrowser([pair(0)], alpha=0.5)
    pictures = {}
    for mode in DataBrowser.MODES:
        browser.set_mode(mode)
        pictures[mode] = browser.render()
    assert len({p.tobytes() for p in pictures.values()}) == 4
    browser.set_mode("overlay")
    browser.set_alpha(0.0)
    np.testing.assert_allclose(browser.render(), pictures["frame"], atol=1e-6)
    with pytest.raises(ValueError, match="unknown view 'x'"):
        browser.set_mode("x")
    with pytest.raises(IndexError, match="frame 5 is out of range: there are 1"):
        browser.show(5)


def test_data_browser_static_figure():
    browser = DataBrowser([pair(seed) for seed in range(5)])
    assert len(browser.figure(indices=range(3)).axes) == 6  # frames over overlays
    browser.set_mode("outline")
    assert len(browser.figure(indices=[0, 4]).axes) == 2


# --- PredictionViewer -------------------------------------------------------------------------------


def test_prediction_viewer_controls_change_the_view():
    pairs = [pair(seed) for seed in range(3)]
    images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    empty = [torch.zeros_like(mask) for mask in masks]
    viewer = PredictionViewer(images, masks, {"perfect": masks, "lazy": empty})
    viewer.widget()
    controls = viewer._controls
    assert viewer.jaccard() == 1.0 and "Jaccard 1.000" in controls["caption"].value
    before = controls["image"].value
    controls["model"].value = "lazy"
    assert viewer.model == "lazy" and viewer.jaccard() == 0.0
    assert controls["image"].value != before
    errors = viewer.errors()
    polyp = (masks[0] == 1).numpy()
    assert (errors[polyp] == np.array(PredictionViewer.MISSED, dtype=np.float32)).all()  # every polyp pixel missed
    shown = controls["image"].value
    controls["alpha"].value = 0.9
    assert controls["image"].value != shown
    controls["slider"].value = 1
    assert viewer.index == 1 and controls["caption"].value.startswith("image 2 of 3, lazy")
    assert len(viewer.figure().axes) == 3 * 4


def test_prediction_viewer_rejects_mismatched_lengths():
    image, mask = pair(0)
    with pytest.raises(ValueError, match="prediction: 2 predictions for 1 images"):
        PredictionViewer([image], [mask], [mask, mask])


# --- ArchitectureExplorer ---------------------------------------------------------------------------


def test_architecture_explorer_recomputes_shapes_and_offsets():
    explorer = ArchitectureExplorer("fcn8s", preset="original", width=0.125)
    explorer.widget()
    table = explorer._controls["table"]
    assert "score_pool4 (5, 5), score_pool3 (9, 9), final (28, 28)" in table.value  # the tutorial's 224 x 224
    explorer._controls["height"].value = 500
    explorer._controls["width"].value = 574
    assert (explorer.height, explorer.width) == (500, 574)
    assert explorer.offsets() == {"score_pool4": (5, 5), "score_pool3": (10, 9), "final": (18, 29)}
    assert "input 500 x 574" in table.value and "1 x 2 x 500 x 574" in table.value
    with pytest.raises(ValueError, match="input size must be positive"):
        explorer.set_size(0, 10)


def test_architecture_explorer_at_full_width_is_cheap_and_renders_html():
    explorer = ArchitectureExplorer()  # FCN-8s, paper preset, width 1.0: shapes come from the meta device
    html = explorer.static()
    assert html.startswith("<p><b>fcn8s</b> (paper), input 224 x 224") and "<table>" in html
    assert explorer._repr_html_() == html


# --- ipywidgets 7.7 (Colab) and 8 -------------------------------------------------------------------

# The controls the views may use: each is in ipywidgets 7.7 and 8 with the same import path and traits.
COMMON_TO_7_AND_8 = {
    "VBox",
    "HBox",
    "IntSlider",
    "FloatSlider",
    "ToggleButtons",
    "Dropdown",
    "Image",
    "Label",
    "BoundedIntText",
    "HTML",
}


def widget_tree(root) -> list:
    return [root] + [leaf for child in getattr(root, "children", ()) for leaf in widget_tree(child)]


def test_views_use_only_widgets_that_ipywidgets_7_and_8_share():
    pairs = [pair(seed) for seed in range(2)]
    views = [
        DataBrowser(pairs),
        PredictionViewer([p[0] for p in pairs], [p[1] for p in pairs], [p[1] for p in pairs]),
        ArchitectureExplorer("fcn32s", width=0.125),
    ]
    used = {type(widget).__name__ for view in views for widget in widget_tree(view.widget())}
    assert used <= COMMON_TO_7_AND_8, f"{sorted(used - COMMON_TO_7_AND_8)} may be missing from ipywidgets 7.7 (Colab)"
    assert {"IntSlider", "Image", "BoundedIntText", "HTML"} <= used
