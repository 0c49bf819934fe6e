"""sendkit-async: an async-first SDK for the SendKit analytics API."""

from ._bulk import BulkReport, CampaignResult, ProgressCallback
from ._client import AsyncSendKit, ClientStats
from ._config import SendKitWarning, Timeout
from ._ratelimit import RateLimitSnapshot
from ._retry import RetryPolicy
from ._shortcuts import gather_campaigns
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BulkError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    ResponseValidationError,
    SendKitError,
    UnprocessableEntityError,
)
from .models import (
    Campaign,
    CampaignAnalytics,
    CampaignStats,
    SequenceSplit,
    SequenceStats,
    StepStats,
    Subsequence,
    SubsequenceTrigger,
)

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncSendKit",
    "AuthenticationError",
    "BadRequestError",
    "BulkError",
    "BulkReport",
    "Campaign",
    "CampaignAnalytics",
    "CampaignResult",
    "CampaignStats",
    "ClientClosedError",
    "ClientStats",
    "ConfigurationError",
    "ConflictError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProgressCallback",
    "RateLimitError",
    "RateLimitSnapshot",
    "RedirectError",
    "ResponseValidationError",
    "RetryPolicy",
    "SendKitError",
    "SendKitWarning",
    "SequenceSplit",
    "SequenceStats",
    "StepStats",
    "Subsequence",
    "SubsequenceTrigger",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "gather_campaigns",
]
