"""The closed word lists of tradegap's tables and input files, declared once.

An order's type, sizing kind, status and origin, and a trailing stop's mode, appear as
words in the order tables users write, in the tables the engine writes, and as small-int
codes inside the compiled engine. The words live here, in a module that imports nothing,
because the schemas may not import the engine (the engine imports the schemas). The engine
numbers them in this order (`engine/core/records.py`: code = position in the tuple), so a
word added here is a code there, and no list is written twice.
"""

ORDER_KINDS = (
    "shares",  # a number of shares (negative sells)
    "value",  # shares worth a cash amount at the fill price
    "percent",  # shares worth a fraction of the book value
    "target_shares",  # trade the delta to hold a number of shares
    "target_value",  # ... shares worth a cash amount
    "target_percent",  # ... shares worth a fraction of the book value
)

ORDER_STATUSES = (
    "filled",  # traded (possibly shrunk, see reason)
    "rejected",  # refused; the reason says why
    "noop",  # nothing to trade after capping and rounding
    "replaced",  # a later target order took its place
    "merged",  # a later delta order absorbed it
    "open",  # no outcome yet: still waiting in the book at the end
    "cancelled",  # withdrawn before it filled; the reason says by what
    "expired",  # not filled by its `valid_until` bar
)

ORDER_TYPES = (
    "market",  # fills at the next fill point (a slot order) or, from a rule, at the open
    "limit",  # buy at or below / sell at or above `limit_price`
    "stop",  # becomes a market order once `stop_price` is reached
    "stop_limit",  # becomes a limit at `limit_price` once `stop_price` is reached
    "trailing_stop",  # a stop whose level trails the best price since placement
)

ORIGINS = (
    "user",  # placed by the strategy or the order table
    "stop_loss",  # risk rule exits (BacktestConfig), one OCO group per position
    "take_profit",
    "trailing_stop",
    "time_exit",
)
RULES = ORIGINS[1:]  # the risk rules that place orders of their own

TRAIL_MODES = (
    "percent",  # level = reference × (1 ∓ trail)
    "absolute",  # level = reference ∓ trail
)
