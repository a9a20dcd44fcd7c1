"""The one error hierarchy of patrolkg.

Every error the library raises on purpose is a :class:`PatrolkgError`. Front ends (the
CLI, the HTTP app) map each class to an exit code or a status; anything else is a bug.

::

    PatrolkgError
    ├── ConfigError              a setting has an unusable value
    ├── InputError               what the caller sent cannot be used
    │   ├── RdfSyntaxError       malformed RDF (source, line, column)
    │   ├── QuerySyntaxError     malformed SPARQL (line, column)
    │   ├── UnsupportedFormat    no parser for that media type or name
    │   ├── NotAcceptable        no serializer the client accepts for this result
    │   ├── UnsafeInput          input that would reach outside (remote contexts, DTDs)
    │   ├── TooComplex           nested deeper or longer than the parsers can take (names the limit)
    │   └── ForbiddenOperation   an operation this entrance does not allow
    ├── ValidationFailed         data that does not conform (carries the report)
    ├── NotFound                 no such resource
    ├── LimitExceeded            a configured limit was hit (names the setting)
    │   ├── QueryTimeout
    │   ├── TooManyRows
    │   └── BodyTooLarge
    └── StoreError               the store could not be read or written
        ├── StoreUnavailable     the remote SPARQL engine does not answer (retry later)
        ├── ServiceFailed        a SERVICE endpoint failed while a query ran
        └── WriteConflict        other servers kept changing the store during a write
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PatrolkgError",
    "ConfigError",
    "InputError",
    "RdfSyntaxError",
    "QuerySyntaxError",
    "UnsupportedFormat",
    "NotAcceptable",
    "UnsafeInput",
    "TooComplex",
    "ForbiddenOperation",
    "ValidationFailed",
    "NotFound",
    "LimitExceeded",
    "QueryTimeout",
    "TooManyRows",
    "BodyTooLarge",
    "StoreError",
    "StoreUnavailable",
    "ServiceFailed",
    "WriteConflict",
]


class PatrolkgError(Exception):
    """Base of every error patrolkg raises on purpose.

    ``code`` is a stable machine-readable name; ``hint`` says what to do about it.
    """

    code = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def details(self) -> dict[str, Any]:
        """Extra structured fields for error documents (line, column, setting, ...)."""
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default pickling; errors cross
        # process boundaries (query workers), so rebuild them from their state.
        return (_rebuild, (type(self), self.args, self.__dict__))

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


def _rebuild(cls: type[PatrolkgError], args: tuple[Any, ...], state: dict[str, Any]) -> PatrolkgError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(PatrolkgError):
    code = "config_error"


class InputError(PatrolkgError):
    code = "bad_input"


class RdfSyntaxError(InputError):
    """Malformed RDF. ``source`` names the file or request part; line/column are 1-based."""

    code = "rdf_syntax_error"

    def __init__(
        self, message: str, *, source: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = source if line is None else f"{source}:{line}:{column or 1}"
        super().__init__(f"{where}: {message}", hint="fix the RDF at that position and retry")
        self.source, self.line, self.column = source, line, column
        self.reason = message

    def details(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "column": self.column}


class QuerySyntaxError(InputError):
    code = "query_syntax_error"

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        where = "" if line is None else f"line {line}, column {column}: "
        super().__init__(f"SPARQL syntax error: {where}{message}")
        self.line, self.column = line, column
        self.reason = message

    def details(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column}


class UnsupportedFormat(InputError):
    code = "unsupported_format"


class NotAcceptable(InputError):
    code = "not_acceptable"


class UnsafeInput(InputError):
    code = "unsafe_input"


class TooComplex(InputError):
    """Input nested deeper, or longer, than patrolkg lets its parsers take (their
    recursion would overflow the stack, or their time grow too fast). ``limit`` is the
    fixed bound that was passed; it is not a setting.

    >>> str(TooComplex("the query nests brackets 65 deep", limit=64, hint="nest less"))
    'the query nests brackets 65 deep (nest less)'
    """

    code = "too_complex"

    def __init__(self, message: str, *, limit: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit

    def details(self) -> dict[str, Any]:
        return {"limit": self.limit}


class ForbiddenOperation(InputError):
    code = "forbidden_operation"


class ValidationFailed(PatrolkgError):
    """Data that does not conform; ``report`` is a :class:`patrolkg.validation.Report`."""

    code = "validation_failed"

    def __init__(self, report: Any, *, source: str | None = None) -> None:
        count = len(report.results)
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}{count} violation{'s' if count != 1 else ''} of the patrolkg shapes or ontology",
            hint="correct the data as each violation says and submit again",
        )
        self.report = report
        self.source = source


class NotFound(PatrolkgError):
    code = "not_found"


class LimitExceeded(PatrolkgError):
    """A configured limit was hit; ``setting`` names the setting that raises it."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, setting: str, limit: Any) -> None:
        super().__init__(message, hint=f"raise {setting} (now {limit}) or ask for less")
        self.setting, self.limit = setting, limit

    def details(self) -> dict[str, Any]:
        return {"setting": self.setting, "limit": self.limit}


class QueryTimeout(LimitExceeded):
    code = "query_timeout"


class TooManyRows(LimitExceeded):
    code = "too_many_rows"


class BodyTooLarge(LimitExceeded):
    code = "body_too_large"


class StoreError(PatrolkgError):
    code = "store_error"


class StoreUnavailable(StoreError):
    """The remote SPARQL engine cannot be reached or is failing; nothing was changed
    unless the message says otherwise. patrolkg retries on the next request."""

    code = "store_unavailable"


class ServiceFailed(StoreError):
    """An allow-listed SERVICE endpoint could not be reached, or failed, while the query
    ran (the engine calls it as it reads the rows); nothing else is wrong."""

    code = "service_failed"


class WriteConflict(StoreError):
    """Other writers changed the store each time this write was validated; nothing
    was written."""

    code = "write_conflict"
