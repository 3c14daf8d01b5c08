import pytest
import torch

from dlnotes import train


def test_batches_cover_each_epoch_once_and_move_together():
    x = torch.arange(10.0)
    y = torch.arange(10) * 2
    gen = torch.Generator().manual_seed(0)
    it = train.batches(x, y, batch_size=5, generator=gen)
    seen = []
    for _ in range(2):
        bx, by = next(it)
        assert torch.equal(by, (bx * 2).long())
        seen += bx.tolist()
    assert sorted(seen) == list(map(float, range(10)))


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size"), ({"batch_size": 11}, "batch_size")])
def test_batches_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        next(train.batches(torch.zeros(10), **kwargs))
    with pytest.raises(ValueError, match="equal length"):
        next(train.batches(torch.zeros(10), torch.zeros(9), batch_size=2))


def test_fit_learns_a_line_and_logs_history():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x - 1
    model = torch.nn.Linear(1, 1)

    def loss_fn(m, batch):
        bx, by = batch
        loss = torch.nn.functional.mse_loss(m(bx), by)
        return loss, {"abs_w_err": abs(m.weight.item() - 3)}

    hist = train.fit(model, loss_fn, train.batches(x, y, batch_size=16),
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.3), steps=200, log_every=50,
                     progress=False)
    assert hist.steps == [50, 100, 150, 200]
    assert set(hist.metrics) == {"loss", "abs_w_err"}
    assert hist.metrics["loss"][-1] < min(1e-3, hist.metrics["loss"][0])
    assert hist.last("abs_w_err") < 0.05
    assert not model.training


def test_fit_bad_steps():
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="steps"):
        train.fit(model, lambda m, b: (m(b[0]).sum(), {}), iter([]), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=0)


@pytest.mark.parametrize("book, progress, shown", [(False, True, True), (False, False, False), (True, True, False)])
def test_fit_shows_a_progress_bar_except_in_book_builds(monkeypatch, book, progress, shown):
    from dlnotes import _book_mode

    bars = []
    real_tqdm = train.tqdm

    def recording_tqdm(iterable, **kw):
        bars.append(kw)
        return real_tqdm(iterable, **{**kw, "disable": True})  # record the choice, draw nothing

    monkeypatch.setattr(train, "tqdm", recording_tqdm)
    if book:
        monkeypatch.setenv(_book_mode.BOOK_BUILD_ENV, "1")
    else:
        monkeypatch.delenv(_book_mode.BOOK_BUILD_ENV, raising=False)
    model = torch.nn.Linear(1, 1)
    data = train.batches(torch.randn(8, 1), batch_size=4, generator=torch.Generator().manual_seed(0))
    train.fit(model, lambda m, b: (m(b[0]).pow(2).mean(), {}), data,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=2, progress=progress)
    assert len(bars) == 1 and bars[0]["disable"] is (not shown)
