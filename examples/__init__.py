"""Runnable worked examples; the README points to them and tests/test_examples.py runs them."""
