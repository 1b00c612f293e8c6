"""Market data: loading and validating bars and weights, the dense market arrays, and the
synthetic market generator."""
