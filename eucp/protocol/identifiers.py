"""Content identifiers (never the content itself), how people write them (`parse_identifier`,
read from the command line and the console), and the rule that says two of them match."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
    vpdq = "vpdq"  # a video: its frames' PDQ hashes, as python-threatexchange's VPDQSignal
    tmk = "tmk"  # a video: its TMK+PDQF feature vectors, the .tmk file in base64


_HEX_LENGTH = {HashAlgorithm.md5: 32, HashAlgorithm.sha256: 64, HashAlgorithm.pdq: 64}
_HEX = re.compile(r"^[0-9a-f]+$")
VIDEO_ALGORITHMS = frozenset({HashAlgorithm.vpdq, HashAlgorithm.tmk})

# ---- vPDQ: a JSON list of "PDQHEX,QUALITY,SECONDS" frames (VpdqCompactFeature) ---------------

# half an hour at vpdq's default of a hash a second (each frame about 76 bytes, in every task
# and matched inside a workflow task): longer videos are hashed less often
MAX_VPDQ_FRAMES = 1800
_VPDQ_FRAME = re.compile(
    r"([0-9a-fA-F]{64}),([0-9]{1,3}),([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
)


@dataclass(frozen=True)
class VpdqFrame:
    """One frame of a vPDQ hash: its PDQ hash (lowercase hex), quality and time in seconds."""

    pdq: str
    quality: int
    timestamp: float


def vpdq_frames(value: str) -> list[VpdqFrame]:
    """The frames of a vPDQ hash written as python-threatexchange's `VPDQSignal` writes it (a
    JSON list of "PDQHEX,QUALITY,SECONDS" strings); a `ValueError` saying what is wrong."""
    shape = 'a JSON list of "PDQHEX,QUALITY,SECONDS" frames'
    try:
        listed = json.loads(value)
    except ValueError:
        raise ValueError(f"a vpdq hash is {shape}: not JSON") from None
    if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
        raise ValueError(f"a vpdq hash is {shape}")
    if not 1 <= len(listed) <= MAX_VPDQ_FRAMES:
        raise ValueError(f"a vpdq hash has 1 to {MAX_VPDQ_FRAMES} frames, got {len(listed)}")
    frames = []
    for number, text in enumerate(listed):
        found = _VPDQ_FRAME.fullmatch(text.strip())
        try:
            if found is None:
                raise ValueError
            quality, seconds = int(found[2]), float(found[3])
        except ValueError:
            raise ValueError(f"a vpdq hash is {shape}; frame {number} is {text[:90]!r}") from None
        if quality > 100 or not math.isfinite(seconds):
            raise ValueError(f"frame {number}: quality is 0-100, the time a number of seconds")
        frames.append(VpdqFrame(found[1].lower(), quality, seconds))
    return frames


def _canonical_vpdq(value: str) -> str:
    """The frames validated, hex in lower case, written as the library writes them (each
    frame's time kept as it was written)."""
    vpdq_frames(value)
    listed = [text.strip().split(",") for text in json.loads(value)]
    return json.dumps([f"{h.lower()},{int(q)},{t}" for h, q, t in listed])


# ---- TMK: the .tmk file of TMK+PDQF feature vectors (ThreatExchange's HASH_TMK) --------------

# projectMagic, fileTypeMagic, frame-feature algorithm, frames per second, periods (P), Fourier
# coefficients (m), frame-feature dimension (d), frames hashed; little-endian, as tmk writes it
_TMK_HEADER = struct.Struct("<4s4s4s5i")
_TMK_MAX_PERIODS, _TMK_MAX_COEFFICIENTS, _TMK_PDQF_DIMENSION = 4, 32, 256


def tmk_bytes(value: str) -> bytes:
    """The .tmk file a TMK hash (base64) stands for, its layout checked: TMK1/FVEC/PDQF, up
    to 4 periods and 32 Fourier coefficients (what tmk-hash-video writes), 256-float frame
    features, every float finite and nothing more; a `ValueError` saying what is wrong."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a tmk hash is a .tmk file in base64: not base64") from None
    if len(data) < _TMK_HEADER.size:
        raise ValueError("a tmk hash is a .tmk file in base64: too short")
    project, file_type, algorithm, fps, periods, coefficients, dimension, frames = (
        _TMK_HEADER.unpack_from(data)
    )
    if (project, file_type, algorithm) != (b"TMK1", b"FVEC", b"PDQF"):
        raise ValueError("a tmk hash is a TMK+PDQF feature-vector file (TMK1 FVEC PDQF)")
    if not (
        0 < fps <= 1000
        and 0 < periods <= _TMK_MAX_PERIODS
        and 0 < coefficients <= _TMK_MAX_COEFFICIENTS
        and dimension == _TMK_PDQF_DIMENSION
    ):
        raise ValueError(
            "a tmk hash has 1-4 periods, 1-32 Fourier coefficients and 256-float frame "
            f"features; got {periods}, {coefficients} and {dimension}"
        )
    if frames < 1:
        raise ValueError("a tmk hash of no frames: the video was not read")
    floats = coefficients + dimension + 2 * periods * coefficients * dimension
    expected = _TMK_HEADER.size + 4 * periods + 4 * floats
    if len(data) != expected:
        raise ValueError(f"a tmk file of this shape is {expected} bytes, got {len(data)}")
    lengths = struct.unpack_from(f"<{periods}i", data, _TMK_HEADER.size)
    values = array("f")
    values.frombytes(data[_TMK_HEADER.size + 4 * periods :])
    if min(lengths) < 1:
        raise ValueError("a tmk hash's periods are positive numbers of frames")
    if not all(map(math.isfinite, values)):
        raise ValueError("a tmk hash's features must be finite numbers")
    return data


class HashIdentifier(BaseModel):
    """A hash with its algorithm; PDQ hashes carry the quality score they were made with.

    md5, sha256 and pdq values are lowercase hex. A `vpdq` value is the frames' PDQ hashes as
    python-threatexchange's VPDQSignal writes them (a JSON list of "PDQHEX,QUALITY,SECONDS"),
    each frame with its own quality; a `tmk` value is the TMK+PDQF .tmk file in base64."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["hash"] = "hash"
    algorithm: HashAlgorithm
    value: str
    quality: int | None = Field(default=None, ge=0, le=100)
    labels: Labels = Labels()

    @field_validator("value")
    @classmethod
    def _of_its_algorithm(cls, value: str, info: ValidationInfo) -> str:
        algorithm = info.data.get("algorithm")
        if algorithm is HashAlgorithm.vpdq:
            return _canonical_vpdq(value)
        if algorithm is HashAlgorithm.tmk:
            return base64.b64encode(tmk_bytes(value.strip())).decode()
        value = value.lower()
        if not _HEX.match(value):
            raise ValueError("must be hexadecimal")
        return value

    @model_validator(mode="after")
    def _fits_algorithm(self) -> HashIdentifier:
        if self.algorithm in VIDEO_ALGORITHMS:
            if self.quality is not None:
                raise ValueError(
                    f"quality: a {self.algorithm} hash has none of its own"
                    + (" (each frame has its own)" if self.algorithm is HashAlgorithm.vpdq else "")
                )
            return self
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
        """What an exact repeat shares: the value, or for a video hash the sha256 of its value
        (of the .tmk file itself for tmk), short enough to keep and to show."""
        if self.algorithm is HashAlgorithm.tmk:
            digest = hashlib.sha256(base64.b64decode(self.value)).hexdigest()
            return f"tmk:sha256:{digest}"
        if self.algorithm is HashAlgorithm.vpdq:
            return f"vpdq:sha256:{hashlib.sha256(self.value.encode()).hexdigest()}"
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


_AS_JSON: TypeAdapter[AnyIdentifier] = TypeAdapter(ContentIdentifier)
FORMS = (
    "an http(s) URL, md5:HEX, sha256:HEX, pdq:HEX:QUALITY, item:PLATFORM:ID, "
    "vpdq:[FRAMES], tmk:BASE64 or an identifier's JSON ({...}, as `eucp hash` writes)"
)


def parse_identifier(text: str) -> AnyIdentifier:
    """`https://...`, `md5:HEX`, `sha256:HEX`, `pdq:HEX:QUALITY`, `item:PLATFORM:ITEM_ID`,
    `vpdq:["PDQHEX,QUALITY,SECONDS", ...]`, `tmk:BASE64`, or the identifier's JSON object as
    the API takes it (labels included; `eucp hash` writes one a line); a `ValueError` saying
    what is wrong otherwise."""
    if text.startswith("{"):
        try:
            return _AS_JSON.validate_json(text)
        except ValidationError as err:
            raise ValueError(describe_invalid(err)) from None
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    data: dict[str, Any]
    model: type[UrlIdentifier | HashIdentifier | PlatformItemIdentifier]
    if scheme in ("http", "https"):
        model = UrlIdentifier
        data = {"value": text}
    elif scheme in ("md5", "sha256", "vpdq", "tmk"):
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
        raise ValueError(f"expected {FORMS}")
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


# vPDQ's match rule (python-threatexchange's brute-force matcher, with the domain's
# thresholds): two videos match when this share of each one's distinct frames of good quality
# lies within the PDQ match distance of a frame of the other
VPDQ_QUERY_MATCH_PERCENT = 70.0
VPDQ_COMPARED_MATCH_PERCENT = 70.0
# distinct frames of vPDQ hashes an incident holds for matching: they travel in the crisis's
# state across continue-as-new (about 43 bytes each, under Temporal's 2 MB a payload), and
# each match looks them up inside a workflow task
VPDQ_INDEX_FRAMES = 10_000


KEY_HELD_AS_IS = 100  # characters; a longer exact key is held as its sha256 (`_held`)


def _held(key: str) -> str:
    """How the index holds an exact key: itself, or past `KEY_HELD_AS_IS` characters its
    sha256. The index goes to the crisis's next run, and 1,500 URLs of 2,048 characters held
    as they are were 3 MB of it, past the 2 MB Temporal takes of one payload. Equal keys have
    equal digests, so a repeat is told from a new identifier as before."""
    if len(key) <= KEY_HELD_AS_IS:
        return key
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"


class IdentifierIndex:
    """What an incident has already received, to tell a new identifier from a repeat.

    Exact match for URLs, items, cryptographic hashes and TMK files; PDQ within `pdq_distance`
    of any PDQ hash received before (kept or itself a duplicate), as the scenario's dedup rule
    says. PDQ hashes at or under the quality floor are discarded, per Meta's PDQ guidance.
    A vPDQ hash repeats one received before when it is the same, or when the two videos match
    by vPDQ's rule: their distinct frames over the quality floor, each within `pdq_distance`
    of a frame of the other, in the shares above both ways. One with no frame over the floor
    is discarded as low quality. Once `vpdq_index_frames` frames are held, later vPDQ hashes
    are still matched against those, but only their exact repeats are caught.
    """

    def __init__(
        self,
        pdq_distance: int = 31,
        pdq_min_quality: int = 50,
        vpdq_query_match: float = VPDQ_QUERY_MATCH_PERCENT,
        vpdq_compared_match: float = VPDQ_COMPARED_MATCH_PERCENT,
        vpdq_index_frames: int = VPDQ_INDEX_FRAMES,
    ) -> None:
        self.pdq_distance = pdq_distance
        self.pdq_min_quality = pdq_min_quality
        self.vpdq_query_match = vpdq_query_match
        self.vpdq_compared_match = vpdq_compared_match
        self.vpdq_index_frames = vpdq_index_frames
        self._exact: set[str] = set()
        self._pdq: list[int] = []
        self._videos = FrameIndex(pdq_distance)

    def classify(self, identifier: AnyIdentifier) -> Verdict:
        """Adds the identifier to the index and says whether it was new."""
        if isinstance(identifier, HashIdentifier) and identifier.algorithm is HashAlgorithm.pdq:
            if (identifier.quality or 0) < self.pdq_min_quality:
                return Verdict.low_quality
            bits = int(identifier.value, 16)
            seen = any((bits ^ other).bit_count() <= self.pdq_distance for other in self._pdq)
            self._pdq.append(bits)
            return Verdict.duplicate if seen else Verdict.new
        key = _held(identifier.key)
        if key in self._exact:
            return Verdict.duplicate
        if isinstance(identifier, HashIdentifier) and identifier.algorithm is HashAlgorithm.vpdq:
            verdict = self._classify_video(vpdq_frames(identifier.value))
            if verdict is not Verdict.low_quality:
                self._exact.add(key)
            return verdict
        self._exact.add(key)
        return Verdict.new

    def _classify_video(self, frames: list[VpdqFrame]) -> Verdict:
        """As python-threatexchange's `match_VPDQ_hash_brute`: frames deduplicated by hash
        (the first kept), then those under the quality floor dropped."""
        distinct: dict[str, int] = {}
        for frame in frames:
            distinct.setdefault(frame.pdq, frame.quality)
        kept = [int(h, 16) for h, quality in distinct.items() if quality >= self.pdq_min_quality]
        if not kept:
            return Verdict.low_quality
        seen = any(
            query * 100 / len(kept) >= self.vpdq_query_match
            and compared * 100 / self._videos.frames_of(video) >= self.vpdq_compared_match
            for video, (query, compared) in self._videos.matches(kept).items()
        )
        if self._videos.size + len(kept) <= self.vpdq_index_frames:
            self._videos.add(kept)
        return Verdict.duplicate if seen else Verdict.new

    def snapshot(self) -> IndexSnapshot:
        """The index as data, carried across continue-as-new."""
        return IndexSnapshot(
            exact=sorted(self._exact),
            pdq=[f"{b:064x}" for b in self._pdq],
            vpdq=[
                base64.b64encode(b"".join(f.to_bytes(32, "big") for f in video)).decode()
                for video in self._videos.videos()
            ],
        )

    @classmethod
    def restore(
        cls, snapshot: IndexSnapshot, pdq_distance: int, pdq_min_quality: int
    ) -> IdentifierIndex:
        index = cls(pdq_distance, pdq_min_quality)
        index._exact = {_held(key) for key in snapshot.exact}  # as earlier versions kept them too
        index._pdq = [int(h, 16) for h in snapshot.pdq]
        for video in snapshot.vpdq:
            packed = base64.b64decode(video)
            index._videos.add(
                [int.from_bytes(packed[i : i + 32], "big") for i in range(0, len(packed), 32)]
            )
        return index


class FrameIndex:
    """The distinct frames (256-bit PDQ hashes) of the videos received, to find every pair of
    frames within `distance` without comparing each frame with every other: a multi-index.
    Each hash is cut into 16 chunks of 16 bits; two hashes within 31 bits differ in at most
    one bit in one of their chunks at least (16 chunks of 2 bits or more would be 32), so
    looking up each chunk and its one-bit variants (two-bit ones up to 47 bits) finds them
    all, and compares a frame with about 1 in 240 of the frames held; over 47 bits, every
    pair is compared."""

    CHUNKS, BITS = 16, 16
    MASK = (1 << BITS) - 1

    def __init__(self, distance: int) -> None:
        self.distance = distance
        self._frames: list[int] = []  # every video's frames, one after the other
        self._video_of: list[int] = []  # the video of each frame
        self._starts: list[int] = []  # where each video's frames start
        self._where: dict[int, list[int]] = {}  # chunk number and value -> frames
        radius = distance // self.CHUNKS  # bits a chunk of a pair within distance may differ
        self._flips: list[int] | None = None
        if radius <= 2:
            self._flips = [
                sum(1 << bit for bit in bits)
                for r in range(radius + 1)
                for bits in combinations(range(self.BITS), r)
            ]

    @property
    def size(self) -> int:
        return len(self._frames)

    def frames_of(self, video: int) -> int:
        end = self._starts[video + 1] if video + 1 < len(self._starts) else self.size
        return end - self._starts[video]

    def videos(self) -> list[list[int]]:
        if not self._starts:
            return []
        ends = [*self._starts[1:], self.size]
        return [self._frames[start:end] for start, end in zip(self._starts, ends, strict=True)]

    def add(self, frames: list[int]) -> None:
        video = len(self._starts)
        self._starts.append(self.size)
        for frame in frames:
            number = self.size
            self._frames.append(frame)
            self._video_of.append(video)
            for n in range(self.CHUNKS):
                key = n << self.BITS | (frame >> (n * self.BITS)) & self.MASK
                self._where.setdefault(key, []).append(number)

    def matches(self, frames: list[int]) -> dict[int, tuple[int, int]]:
        """For each video held with a frame within the distance of one of `frames`: how many
        of `frames` are within the distance of one of its frames, and how many of its frames
        are within the distance of one of `frames`."""
        held, video_of, where, flips = self._frames, self._video_of, self._where, self._flips
        query: dict[int, set[int]] = {}
        compared: set[int] = set()
        for q, frame in enumerate(frames):
            near: Iterable[int]
            if flips is None:
                near = range(len(held))
            else:
                near = set()
                for n in range(self.CHUNKS):
                    key = n << self.BITS | (frame >> (n * self.BITS)) & self.MASK
                    for hit in map(where.get, [key ^ flip for flip in flips]):
                        if hit is not None:
                            near.update(hit)
            for number in near:
                if (frame ^ held[number]).bit_count() <= self.distance:
                    query.setdefault(video_of[number], set()).add(q)
                    compared.add(number)
        matched: dict[int, int] = {}
        for number in compared:
            matched[video_of[number]] = matched.get(video_of[number], 0) + 1
        return {video: (len(query[video]), matched[video]) for video in sorted(query)}


class IndexSnapshot(BaseModel):
    exact: list[str] = Field(default_factory=list)
    pdq: list[str] = Field(default_factory=list)
    # each vPDQ video held for matching: its distinct frames over the quality floor, 32 bytes
    # each, in base64
    vpdq: list[str] = Field(default_factory=list)


TX_SIGNAL_OF_ALGORITHM: dict[str, str] = {
    "pdq": "pdq",
    "md5": "video_md5",
    "sha256": "video_sha256",
    "vpdq": "vpdq",
    "tmk": "tmk_pdqf",
}
"""eucp's hash algorithm -> python-threatexchange's signal type name: the library's video md5
and sha256 types take any file's, as NCMEC's exchange does. The exchange (`eucp.exchange`) and
the hash lists (`eucp identifiers`) both speak in these."""
TX_ALGORITHM_OF_SIGNAL = {signal: algorithm for algorithm, signal in TX_SIGNAL_OF_ALGORITHM.items()}
TX_URL_SIGNAL = "url"
