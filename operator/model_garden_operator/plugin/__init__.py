"""`kubectl mg`: chat with, deploy, list and inspect InferenceModels from the terminal.

Imports no vLLM and no Kopf: it runs from the base install (httpx, click, rich, pyyaml, pydantic).
The `kubernetes` package (the `operator` extra) is used only for kubeconfig users with a legacy
`auth-provider`; token, client-certificate, basic-auth and `exec` credentials are read here.
"""
