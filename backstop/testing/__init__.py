"""Test and demo helpers that ship with the package (the loopback fake Alpaca server).

They live inside ``backstop`` rather than ``tests/`` because the keyless demo
(``backstop paper --broker alpaca-fake``) starts them too. The engine, domain and broker
layers never import this package (an import-linter contract in ``pyproject.toml``).
"""
