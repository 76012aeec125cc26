"""microbudget's engine: load a model, apply miniaturization techniques, measure, keep runs.

Never imports streamlit: the app's pages and the CLI both call into this package.
"""
