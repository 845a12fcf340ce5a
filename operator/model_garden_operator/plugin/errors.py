"""What can go wrong for a person at the terminal, each as one line of explanation.

Every failure the plugin expects ends as a `PluginError`; `cli.main` prints it as `error: ...` on
stderr (no traceback) and exits with its code.
"""

from __future__ import annotations


class PluginError(Exception):
    """A failure with a one-line explanation for a person; `exit_code` is the process's status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(PluginError):
    """No usable kubeconfig, context or credentials."""


class ApiUnreachable(PluginError):
    """The API server (or a --url endpoint) did not answer."""


class NotFound(PluginError):
    pass


class Forbidden(PluginError):
    pass


class NotReady(PluginError):
    """The model exists but does not serve (yet)."""


class ModelFailed(PluginError):
    """The model's status says it cannot work as specified."""


class WaitTimeout(PluginError):
    pass
