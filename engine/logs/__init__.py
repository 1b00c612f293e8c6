"""Trade logs as engines and brokers write them, read into the analysis's fill table.

`read_log` detects the format from the columns (or takes `format=`), maps symbols to the
price table's assets and fill times to bars, checks every fill against its bar, and
returns `timestamp, asset, quantity, price, fee` (plus `order` and `trigger` when the log
has them). Each format is one module here; docs/explain.md lists what each one holds.
"""

from engine.logs.options import LogOptions
from engine.logs.read import FORMATS, NativeLog, read_log

__all__ = ["FORMATS", "LogOptions", "NativeLog", "read_log"]
