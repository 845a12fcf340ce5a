"""Request limits the HTTP API enforces before vLLM sees a request, each refusal naming its limit.

vLLM accepts what it can technically run; a shared server needs tighter bounds. A huge `n` makes
vLLM stall for seconds when its client cancels; a huge stop string is searched for after every
generated token; an unbounded `name` is copied into every prompt. `max_tokens` beyond the context and
more than 4 stop strings are refused by vLLM itself (400). The per-request timeout aborts the engine
request when it fires.

The same table style as settings.py: the CLI options and the operator's container arguments come
from LIMIT_FLAGS.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from model_garden_common.settings import FlagRow


class LimitExceeded(ValueError):
    """A request over a limit: a 400 naming the parameter and the limit."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


class RequestLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_n: int = Field(8, ge=1, description="Most choices (`n`, `best_of`) one request may ask for.")
    max_stop_length: int = Field(512, ge=1, description="Longest `stop` string, in characters.")
    max_name_length: int = Field(256, ge=1, description="Longest message `name`, in characters.")
    request_timeout: float = Field(
        600, gt=0, description="Seconds one request may run before it is aborted (streams included)."
    )

    def to_args(self) -> list[str]:
        args: list[str] = []
        for row in LIMIT_FLAGS:
            args += [row.flag, str(getattr(self, row.field))]
        return args

    def check_sampling(self, request: Any) -> None:
        """Checks shared by chat and completion requests (vLLM's parsed request objects)."""
        for param in ("n", "best_of"):
            value = getattr(request, param, None)
            if value is not None and value > self.max_n:
                raise LimitExceeded(param, f"{param}={value} is over this server's limit of {self.max_n}")
        # vLLM's request models already cap `stop` at 4 strings (as OpenAI does), not their length.
        stop = request.stop
        stops = [stop] if isinstance(stop, str) else list(stop or ())
        if stops and (longest := max(len(item) for item in stops)) > self.max_stop_length:
            raise LimitExceeded(
                "stop", f"a stop sequence of {longest} characters is over the limit of {self.max_stop_length}"
            )

    def check_chat(self, request: Any) -> None:
        self.check_sampling(request)
        for index, message in enumerate(request.messages):
            name = message.get("name") if isinstance(message, dict) else getattr(message, "name", None)
            if isinstance(name, str) and len(name) > self.max_name_length:
                raise LimitExceeded(
                    f"messages[{index}].name",
                    f"a message name of {len(name)} characters is over the limit of {self.max_name_length}",
                )


LIMIT_FLAGS: tuple[FlagRow, ...] = (
    FlagRow("max_n", "--max-n"),
    FlagRow("max_stop_length", "--max-stop-length"),
    FlagRow("max_name_length", "--max-name-length"),
    FlagRow("request_timeout", "--request-timeout"),
)
