"""Model Garden runtime: vLLM behind FastAPI, its CLI and Python API."""

__version__ = "0.1.0"
