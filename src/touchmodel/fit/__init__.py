"""Fitting the touch model to a customer's data, and spending CSM time where it counts."""
