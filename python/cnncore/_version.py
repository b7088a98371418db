"""The one place the version lives: pyproject.toml reads it (scikit-build-core's regex
provider), ``cnncore.__version__`` and ``cnncore --version`` import it."""
__version__ = "0.1.0"
