"""The run directory, torch-free: its paths (:class:`RunDir`), manifest, gradient store and lock.

The dashboard, ``ogad export`` and the review code read runs through this package alone.
"""
