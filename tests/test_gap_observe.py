"""What a fill log shows directly (`observe`): the price model most fills follow, and the bars
whose fills follow another one.

A bar whose one fill is at the close of a log that fills at the open is a change of price
point at that bar, not a fill at the open slipped by chance (a sale below the open) or
favourably (slippage is against the trader): a log's timing fault changes where its fills
sit in the bar from the bar it starts. A price that is neither the bar's open nor its close
stays a one-off price.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from engine.gap.observe import PriceModel, observe
from engine.reference import Bars

DAYS = [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(6)]
# one asset whose bars 3 and 4 close below and above their open
OPENS = [10.0, 10.5, 11.0, 12.0, 11.0, 11.5]
CLOSES = [10.4, 10.9, 11.8, 11.2, 11.9, 11.4]


def _bars() -> tuple[Bars, dict]:
    prices = pl.DataFrame({"timestamp": DAYS, "asset": ["X"] * 6, "open": OPENS,
                           "high": [max(o, c) + 0.3 for o, c in zip(OPENS, CLOSES, strict=True)],
                           "low": [min(o, c) - 0.3 for o, c in zip(OPENS, CLOSES, strict=True)],
                           "close": CLOSES, "volume": [1e6] * 6})
    bars = Bars.from_frame(prices)
    return bars, {t: i for i, t in enumerate(bars.timestamps)}


def _log(rows: list[tuple[int, float, float]]) -> pl.DataFrame:
    """Fills (bar, quantity, price) of the one asset, fees none."""
    return pl.DataFrame({"timestamp": [DAYS[b] for b, _, _ in rows], "asset": ["X"] * len(rows),
                         "quantity": [q for _, q, _ in rows], "price": [p for _, _, p in rows],
                         "fee": [0.0] * len(rows)})


OPEN_FILLS = [(0, 100.0, OPENS[0]), (1, 50.0, OPENS[1]), (2, -20.0, OPENS[2])]


def test_a_log_that_fills_at_the_open_has_the_open_as_its_model():
    bars, bar_of = _bars()
    observed = observe(_log(OPEN_FILLS), bars, bar_of)
    assert observed.price == PriceModel("open", 0.0)
    assert not observed.price_by_bar and not observed.overrides


def test_a_sale_at_the_close_below_the_open_is_that_bars_change_of_point():
    bars, bar_of = _bars()
    observed = observe(_log([*OPEN_FILLS, (3, -30.0, CLOSES[3])]), bars, bar_of)
    assert observed.price_by_bar == {3: PriceModel("close", 0.0)}
    assert not observed.overrides


def test_a_sale_at_the_close_above_the_open_is_not_the_open_slipped_by_chance():
    bars, bar_of = _bars()
    observed = observe(_log([*OPEN_FILLS, (4, -30.0, CLOSES[4])]), bars, bar_of)
    assert observed.price_by_bar == {4: PriceModel("close", 0.0)}
    assert not observed.overrides


def test_a_price_that_is_neither_the_open_nor_the_close_stays_a_one_off():
    bars, bar_of = _bars()
    odd = (OPENS[3] + CLOSES[3]) / 2
    observed = observe(_log([*OPEN_FILLS, (3, -30.0, odd)]), bars, bar_of)
    assert 3 not in observed.price_by_bar
    assert observed.overrides == {3: {"X": (odd, None)}}


def test_slippage_that_every_fill_shows_is_the_model():
    bars, bar_of = _bars()
    slipped = [(b, q, OPENS[b] * (1 + 0.001 * (1 if q > 0 else -1))) for b, q, _ in OPEN_FILLS]
    observed = observe(_log(slipped), bars, bar_of)
    assert observed.price.point == "open"
    assert abs(observed.price.slippage - 0.001) < 1e-9
