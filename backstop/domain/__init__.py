"""The vocabulary every layer may import: enums and reason codes, instruments, orders and
their state machine, and the intent table contract. Plain Python: no numba, no I/O."""
