"""The convolutional VAE that searches product catalogs by look.

``model`` builds the network and its β-VAE loss, ``checkpoints`` saves and loads ``models/vae-<dataset>/``,
``latents`` encodes, decodes and caches catalog vectors, ``training`` fits and scores, ``catalogs`` reads
the furniture catalog and picks a catalog by name.
"""
