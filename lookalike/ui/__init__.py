"""Floor 1 of the UI: Streamlit pieces the pages share. The only package in ``lookalike`` that imports Streamlit."""
