"""The simulation core: the ledger and the order book (the only owners of state), the
execution kernels, the phase-ordered loop, the strategy API, settings and profiles."""
