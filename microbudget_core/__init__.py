"""microbudget's engine: load a model, apply miniaturization techniques, measure, keep runs.

Never imports streamlit: the app's pages and the CLI both call into this package. What differs between
kinds of model lives in kinds/, between runtimes in runtimes/, between techniques in techniques/: adding
one is adding a module there (each package's docstring says what the module holds). The page-level jobs
live in labs/, built on pipeline.run_pipeline and measure.measure.
"""
