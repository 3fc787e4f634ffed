"""Style Search's collections: folders indexed incrementally (``folders``), ranked (``ranking``), labelled
for evaluation (``labels``), the collections that ship (``samples``), and indexing on Ray (``ray_engine``).

The embedder is passed in: this package knows only ``model_id``, ``prepare`` and ``embed``.
"""
