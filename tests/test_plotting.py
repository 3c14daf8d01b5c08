import json

import plotly.graph_objects as go
import pytest
import torch

from dlnotes import _book_mode, plotting
from dlnotes.train import History


def test_image_grid_one_heatmap_per_image_and_titles():
    fig = plotting.image_grid(torch.rand(5, 1, 8, 8), ncols=3, titles=list("abcde"))
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 5
    assert [a.text for a in fig.layout.annotations] == list("abcde")


def test_image_grid_rgb_keeps_channel_order_and_top_row():
    img = torch.zeros(2, 3, 4, 5)
    img[0, 0, 0, 0] = 1.0  # top-left pixel of the first image pure red
    img[1, 2, 3, 4] = 0.5  # bottom-right pixel of the second image half blue
    fig = plotting.image_grid(img, ncols=2)
    images = [t for t in fig.data if t.type == "image"]
    assert len(images) == 2 and not [t for t in fig.data if t.type == "heatmap"]
    first, second = (torch.tensor(t.z.tolist()) for t in images)
    assert first.shape == (4, 5, 3) and first[0, 0].tolist() == [255, 0, 0] and int(first.sum()) == 255
    assert second[3, 4].tolist() == [0, 0, 128] and int(second.sum()) == 128


def test_image_grid_rgb_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="zmax"):
        plotting.image_grid(torch.full((1, 3, 4, 4), 1.5))


@pytest.mark.parametrize("shape, match", [((2, 2, 8, 8), "1 or 3 channels"), ((8, 8), "images must be")])
def test_image_grid_bad_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        plotting.image_grid(torch.rand(*shape))


def test_curves_from_history_and_unknown_key():
    h = History()
    h.log(10, {"loss": 1.0, "acc": 0.5})
    h.log(20, {"loss": 0.5, "acc": 0.7})
    fig = plotting.curves(h, ["loss"], log_y=True)
    assert list(fig.data[0].x) == [10, 20] and list(fig.data[0].y) == [1.0, 0.5]
    assert fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="keys"):
        plotting.curves(h, ["nope"])


def test_slider_frames_steps_and_no_autoplay():
    frames = [[go.Scatter(x=[0, 1], y=[i, i])] for i in range(4)]
    fig = plotting.slider(frames, [f"s{i}" for i in range(4)], active=1)
    assert len(fig.frames) == 4 and fig.data[0].y == (1, 1)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["s0", "s1", "s2", "s3"]
    assert [list(s.args[0]) for s in steps] == [["0"], ["1"], ["2"], ["3"]]
    assert not fig.layout.updatemenus  # no play button
    with pytest.raises(ValueError, match="labels"):
        plotting.slider(frames, ["a"])
    with pytest.raises(ValueError, match="same number of traces"):
        plotting.slider([[go.Scatter()], []], ["a", "b"])


def test_book_renderer_emits_light_html(monkeypatch):
    import plotly.io as pio

    previous = pio.renderers.default
    monkeypatch.setenv(_book_mode.BOOK_BUILD_ENV, "1")
    try:
        _book_mode.configure()
        assert pio.renderers.default == _book_mode.RENDERER_NAME
        fig = plotting.slider([[go.Scatter(y=[1, 2])], [go.Scatter(y=[2, 1])]], ["a", "b"])
        bundle = pio.renderers[_book_mode.RENDERER_NAME].to_mimebundle(fig.to_dict())
    finally:
        pio.renderers.default = previous
    assert list(bundle) == ["text/html"]
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "Plotly.addFrames" in html
    assert len(html) < 20_000  # plotly.js (~4.8 MB) is not inlined
    assert "cdn" not in html.lower() and "mathjax" not in html.lower()
    assert "Plotly.animate" not in html  # frames do not autoplay


def test_book_renderer_untouched_outside_builds(monkeypatch):
    import plotly.io as pio

    monkeypatch.delenv(_book_mode.BOOK_BUILD_ENV, raising=False)
    before = pio.renderers.default
    _book_mode.configure()
    assert pio.renderers.default == before != _book_mode.RENDERER_NAME


def test_show_widget_is_a_note_in_book_builds(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setenv(_book_mode.BOOK_BUILD_ENV, "1")
    plotting.show_widget("WIDGET")
    monkeypatch.delenv(_book_mode.BOOK_BUILD_ENV)
    plotting.show_widget("WIDGET")
    assert "Live controls" in shown[0].data and shown[1] == "WIDGET"


def test_show_widget_builds_from_a_callable_only_outside_book_builds(monkeypatch):
    shown, built = [], []

    def build(fn, **controls):
        built.append((fn, controls))
        return "BUILT"

    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setenv(_book_mode.BOOK_BUILD_ENV, "1")
    plotting.show_widget(build, print, x=1)
    assert built == [] and "Live controls" in shown[0].data  # nothing built in the book
    monkeypatch.delenv(_book_mode.BOOK_BUILD_ENV)
    plotting.show_widget(build, print, x=1)
    assert built == [(print, {"x": 1})] and shown[1] == "BUILT"
    with pytest.raises(ValueError, match="callable"):
        plotting.show_widget("WIDGET", 1)


def test_curves_always_titles_the_y_axis():
    one = plotting.curves({"loss": [3.0, 2.0, 1.0]})
    two = plotting.curves({"train": [1.0, 0.5], "test": [1.2, 0.9]})
    named = plotting.curves({"train": [1.0, 0.5]}, y_title="bits per code")
    assert one.layout.yaxis.title.text == "loss" and two.layout.yaxis.title.text == "value"
    assert named.layout.yaxis.title.text == "bits per code"
