"""sendkit-async: an async-first SDK for the SendKit analytics API."""

from ._budget import RateBudget
from ._bulk import BulkReport, CampaignResult, ProgressCallback
from ._client import AsyncSendKit
from ._config import SendKitWarning, Timeout
from ._core import ClientStats
from ._frames import to_arrow, to_pandas, to_polars
from ._hints import RateLimitHints
from ._protocol import DateLike
from ._ratelimit import RateLimiter, RateLimitSnapshot
from ._raw import APIResponse
from ._retry import RetryPolicy
from ._shortcuts import gather_campaigns
from ._sync import SendKit
from ._version import __version__
from .cache import CachedResponse, MemoryCache, ResponseCache
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
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    ResponseValidationError,
    SendKitError,
    SharedBudgetUnavailableError,
    UnexpectedError,
    UnprocessableEntityError,
)
from .models import (
    Campaign,
    CampaignAnalytics,
    CampaignListStats,
    CampaignPage,
    CampaignStats,
    CampaignSummary,
    DailyStats,
    Mailbox,
    Overview,
    OverviewRates,
    Pagination,
    Percent,
    SequenceSplit,
    SequenceStats,
    StepStats,
    Subsequence,
    SubsequenceTrigger,
    Warmup,
)
from .wire import from_wire, to_wire

__all__ = [
    "APIConnectionError",
    "APIResponse",
    "APIStatusError",
    "APITimeoutError",
    "AsyncSendKit",
    "AuthenticationError",
    "BadRequestError",
    "BulkError",
    "BulkReport",
    "CachedResponse",
    "Campaign",
    "CampaignAnalytics",
    "CampaignListStats",
    "CampaignPage",
    "CampaignResult",
    "CampaignStats",
    "CampaignSummary",
    "ClientClosedError",
    "ClientStats",
    "ConfigurationError",
    "ConflictError",
    "DailyStats",
    "DateLike",
    "InternalServerError",
    "InvalidRequestError",
    "Mailbox",
    "MemoryCache",
    "MissingDependencyError",
    "NotFoundError",
    "Overview",
    "OverviewRates",
    "Pagination",
    "Percent",
    "PermissionDeniedError",
    "ProgressCallback",
    "RateBudget",
    "RateLimitError",
    "RateLimitHints",
    "RateLimitSnapshot",
    "RateLimiter",
    "RedirectError",
    "ResponseCache",
    "ResponseValidationError",
    "RetryPolicy",
    "SendKit",
    "SendKitError",
    "SendKitWarning",
    "SequenceSplit",
    "SequenceStats",
    "SharedBudgetUnavailableError",
    "StepStats",
    "Subsequence",
    "SubsequenceTrigger",
    "Timeout",
    "UnexpectedError",
    "UnprocessableEntityError",
    "Warmup",
    "__version__",
    "from_wire",
    "gather_campaigns",
    "to_arrow",
    "to_pandas",
    "to_polars",
    "to_wire",
]
