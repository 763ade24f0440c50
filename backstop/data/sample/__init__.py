"""Bundled synthetic sample bars (GBM, not market data); see README.md beside this file."""
