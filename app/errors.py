"""One error hierarchy for the whole service; each error carries its HTTP status. Services never raise HTTPException."""

from __future__ import annotations


class RewardsmithError(Exception):
    """Base class: ``message`` says what happened and what to do; ``status_code`` is the HTTP status."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(RewardsmithError):
    status_code = 422
    code = "invalid_input"


class NotFound(RewardsmithError):
    status_code = 404
    code = "not_found"


class Conflict(RewardsmithError):
    status_code = 409
    code = "conflict"


class Unauthorized(RewardsmithError):
    status_code = 401
    code = "unauthorized"


class Forbidden(RewardsmithError):
    status_code = 403
    code = "forbidden"


class RateLimited(RewardsmithError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMError(RewardsmithError):
    """The LLM gave no usable answer; the message says what happened (status, endpoint, model) and what to do."""

    status_code = 502
    code = "llm_unavailable"

    def __init__(self, message: str, *, http_status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.attempts = attempts
