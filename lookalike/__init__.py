"""Lookalike: visual search over paintings, photos and product catalogs.

The package holds all the logic, one job per module; the top-level files (``app.py``, ``image_search.py``,
``style_transfer.py``, ``classifier.py``, ``vae.py``, ``utils.py``) are its front doors. Imports run
downward only (see the README's Architecture section and the import-linter contracts in pyproject.toml):

    lookalike.ui  ->  lookalike.search | style | classifier | vae  ->  lookalike.domain, datasets  ->  lookalike.core
"""
