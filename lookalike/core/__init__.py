"""Floor 0: settings, image decoding, atomic files, downloads, the embedding cache, vectors, maps, indexes.

Nothing here knows about a particular tool or imports Streamlit; every tool builds on it.
"""
