"""Content identifiers (never the content itself), how people write them (`parse_identifier`,
read from the command line and the console), and the rule that says two of them match."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eucp.protocol.participants import ID_PATTERN


class Labels(BaseModel):
    """GIFCT hash-sharing taxonomy labels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity: str | None = Field(default=None, max_length=200)
    content_type: str | None = Field(default=None, max_length=100)
    behaviour: str | None = Field(default=None, max_length=200)


class UrlIdentifier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["url"] = "url"
    value: str = Field(max_length=2048)
    platform: str | None = Field(default=None, pattern=ID_PATTERN)
    labels: Labels = Labels()

    @field_validator("value")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value

    @property
    def key(self) -> str:
        return f"url:{self.value}"


class PlatformItemIdentifier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["item"] = "item"
    platform: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(min_length=1, max_length=200)
    labels: Labels = Labels()

    @property
    def key(self) -> str:
        return f"item:{self.platform}:{self.item_id}"


class HashAlgorithm(StrEnum):
    md5 = "md5"
    sha256 = "sha256"
    pdq = "pdq"


_HEX_LENGTH = {HashAlgorithm.md5: 32, HashAlgorithm.sha256: 64, HashAlgorithm.pdq: 64}
_HEX = re.compile(r"^[0-9a-f]+$")


class HashIdentifier(BaseModel):
    """A hash with its algorithm; PDQ hashes carry the quality score they were made with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["hash"] = "hash"
    algorithm: HashAlgorithm
    value: str
    quality: int | None = Field(default=None, ge=0, le=100)
    labels: Labels = Labels()

    @field_validator("value")
    @classmethod
    def _lower_hex(cls, value: str) -> str:
        value = value.lower()
        if not _HEX.match(value):
            raise ValueError("must be hexadecimal")
        return value

    @model_validator(mode="after")
    def _fits_algorithm(self) -> HashIdentifier:
        expected = _HEX_LENGTH[self.algorithm]
        if len(self.value) != expected:
            raise ValueError(
                f"value: a {self.algorithm} hash is {expected} hex digits, got {len(self.value)}"
            )
        if self.algorithm is HashAlgorithm.pdq and self.quality is None:
            raise ValueError("quality: a pdq hash needs its quality score (0-100)")
        return self

    @property
    def key(self) -> str:
        return f"{self.algorithm}:{self.value}"


AnyIdentifier = UrlIdentifier | PlatformItemIdentifier | HashIdentifier
ContentIdentifier = Annotated[AnyIdentifier, Field(discriminator="kind")]


def describe_invalid(err: ValidationError) -> str:
    """A pydantic error as one line per problem, without pydantic's boilerplate."""
    return "; ".join(
        ".".join(str(part) for part in error["loc"])
        + ": "
        + error["msg"].removeprefix("Value error, ")
        if error["loc"]
        else error["msg"].removeprefix("Value error, ")
        for error in err.errors()
    )


def parse_identifier(text: str) -> AnyIdentifier:
    """`https://...`, `md5:HEX`, `sha256:HEX`, `pdq:HEX:QUALITY` or `item:PLATFORM:ITEM_ID`;
    a `ValueError` saying what is wrong otherwise."""
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    data: dict[str, Any]
    model: type[UrlIdentifier | HashIdentifier | PlatformItemIdentifier]
    if scheme in ("http", "https"):
        model = UrlIdentifier
        data = {"value": text}
    elif scheme in ("md5", "sha256"):
        model, data = HashIdentifier, {"algorithm": scheme, "value": rest}
    elif scheme == "pdq":
        value, _, quality = rest.partition(":")
        if not quality.isdigit():
            raise ValueError("a pdq hash is pdq:HEX:QUALITY, QUALITY 0-100")
        model, data = HashIdentifier, {"algorithm": "pdq", "value": value, "quality": int(quality)}
    elif scheme == "item":
        platform, _, item_id = rest.partition(":")
        model, data = PlatformItemIdentifier, {"platform": platform, "item_id": item_id}
    else:
        raise ValueError(
            "expected an http(s) URL, md5:HEX, sha256:HEX, pdq:HEX:QUALITY or item:PLATFORM:ID"
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ValueError(describe_invalid(err)) from None


def lines_of(source: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of a file's non-blank lines that are not `#` comments: identifiers
    and task ids pasted or read one per line."""
    for number, line in enumerate(source, 1):
        text = line.strip()
        if text and not text.startswith("#"):
            yield number, text


class Verdict(StrEnum):
    new = "new"
    duplicate = "duplicate"
    low_quality = "low_quality"


class IdentifierIndex:
    """What an incident has already received, to tell a new identifier from a repeat.

    Exact match for URLs, items and cryptographic hashes; PDQ within `pdq_distance` of any PDQ
    hash received before (kept or itself a duplicate), as the scenario's dedup rule says.
    PDQ hashes at or under the quality floor are discarded, per Meta's PDQ guidance.
    """

    def __init__(self, pdq_distance: int = 31, pdq_min_quality: int = 50) -> None:
        self.pdq_distance = pdq_distance
        self.pdq_min_quality = pdq_min_quality
        self._exact: set[str] = set()
        self._pdq: list[int] = []

    def classify(self, identifier: AnyIdentifier) -> Verdict:
        """Adds the identifier to the index and says whether it was new."""
        if isinstance(identifier, HashIdentifier) and identifier.algorithm is HashAlgorithm.pdq:
            if (identifier.quality or 0) < self.pdq_min_quality:
                return Verdict.low_quality
            bits = int(identifier.value, 16)
            seen = any((bits ^ other).bit_count() <= self.pdq_distance for other in self._pdq)
            self._pdq.append(bits)
            return Verdict.duplicate if seen else Verdict.new
        key = identifier.key
        if key in self._exact:
            return Verdict.duplicate
        self._exact.add(key)
        return Verdict.new

    def snapshot(self) -> IndexSnapshot:
        """The index as data, carried across continue-as-new."""
        return IndexSnapshot(exact=sorted(self._exact), pdq=[f"{b:064x}" for b in self._pdq])

    @classmethod
    def restore(
        cls, snapshot: IndexSnapshot, pdq_distance: int, pdq_min_quality: int
    ) -> IdentifierIndex:
        index = cls(pdq_distance, pdq_min_quality)
        index._exact = set(snapshot.exact)
        index._pdq = [int(h, 16) for h in snapshot.pdq]
        return index


class IndexSnapshot(BaseModel):
    exact: list[str] = Field(default_factory=list)
    pdq: list[str] = Field(default_factory=list)
