"""The live runner's operations kit: the parts around ``backstop paper`` that an operator uses.

- ``alerts``: alert records, a notifier interface with a log sink, a webhook sink and a
  fan-out, and the signals-without-orders alarm (seed 000's silent no-op); ``background``
  delivers them off the trading loop.
- ``killswitch``: the run-directory marker, a kill request written from outside the process
  (``backstop kill RUN_DIR``) or by a signal, and its acknowledgement.
- ``readiness``: the pre-deployment checklist of seed 001 as pass/fail checks
  (``backstop readiness``).
- ``status``: the one-line live status (plain text or a rich renderable).

Each piece is small, has no wall clock of its own except where it measures the wall clock
(the readiness clock check, the kill request's stamp), and is usable without the runner.
"""
