"""Fitting a touch model to a customer's data: diagnostics, backtests, calibration."""
