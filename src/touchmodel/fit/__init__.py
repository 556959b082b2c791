"""Fitting the touch model to a customer's data: replay, backtest, calibrate, diagnostics, allocation, what-if."""
