"""What the runtime, the operator and the kubectl plugin share: constants and the settings tables.

Imports nothing heavy (no vLLM, torch, kopf, kubernetes, fastapi): the slim operator image and the
plugin use it. Import contracts in pyproject.toml (import-linter) keep it that way.
"""
