"""Datasets more than one tool reads: the ``Catalog`` type and Fashion-MNIST (the classifier trains on it,
the VAE searches it). Read at run time from system packages; nothing is copied into the repository."""
