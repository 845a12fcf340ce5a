"""Images in requests: limits, SSRF-safe fetching, validation, metrics (see docs/vision.md).

Every image a client sends goes through `pipeline.ImagePipeline` before vLLM sees the request:
http(s) URLs are fetched here under the address policy, local files are read only from an allowed
directory, and every image (fetched, read or inline) reaches vLLM as a validated base64 data URL,
so vLLM itself never fetches a URL nor opens a file.

This package's `settings` and `addresses` modules import nothing heavy (the operator image uses
them); the pipeline, fetcher and decoder import PIL and httpx, so import them by module.
"""
