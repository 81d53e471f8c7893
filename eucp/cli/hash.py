"""`eucp hash FILE...`: identifiers computed on this machine from the content itself, which
never leaves it (no network here): md5 and sha256 of any file, PDQ with its quality for
images, vPDQ and TMK for videos, through the libraries Meta's hash-matching tools use
(python-threatexchange and its PDQ, vPDQ and TMK hashers). One identifier a line, as the
API's JSON with the labels given, ready for `eucp crisis add-content --from FILE`.

The image hashers come with the `exchange` extra (`pip install 'eucp[exchange]'`); the video
hashers build from source where FFmpeg's development files (vPDQ) or SWIG and an `ffmpeg`
program (TMK) are installed: see "Hashing at the source" in docs/platforms.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from pydantic import ValidationError

from eucp.cli.framework import Invalid, Unavailable
from eucp.protocol.identifiers import (
    MAX_VPDQ_FRAMES,
    HashAlgorithm,
    HashIdentifier,
    Labels,
    describe_invalid,
)

EXTRA = "pip install 'eucp[exchange]' (in a checkout: make exchange)"
VPDQ_NEEDS = (
    "pip install vpdq, which builds against FFmpeg's libraries: on Debian first "
    "apt-get install pkg-config libavcodec-dev libavformat-dev libavdevice-dev "
    "libavfilter-dev libavutil-dev libswresample-dev libswscale-dev"
)
TMK_NEEDS = "pip install tmkpy, which builds with SWIG (apt-get install swig) and runs ffmpeg"
PDQ_FLOOR = 50  # Meta's PDQ guidance, and eucp's default EUCP_PDQ_MIN_QUALITY
DEFAULT = {
    "image": (HashAlgorithm.md5, HashAlgorithm.sha256, HashAlgorithm.pdq),
    "video": (HashAlgorithm.md5, HashAlgorithm.sha256, HashAlgorithm.vpdq),
    "other": (HashAlgorithm.md5, HashAlgorithm.sha256),
}


class Missing(Unavailable):
    """A hasher whose library is not installed here: what to install."""


@dataclass
class Hashed:
    path: Path
    identifiers: list[HashIdentifier]
    notes: list[str]


def exact_hashes(path: Path) -> tuple[str, str]:
    """md5 and sha256 of the file, read once."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def kind_of(path: Path) -> str:
    """`image` when Pillow reads it, `video` by its name's type, `other` otherwise."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is not None and guessed.startswith("video/"):
        return "video"
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover (Pillow comes with the base install)
        return "image" if guessed and guessed.startswith("image/") else "other"
    try:
        with Image.open(path):
            return "image"
    except Image.DecompressionBombError:
        return "image"  # and too big to hash: pdq_hash says so
    except (UnidentifiedImageError, OSError):
        return "other"


def pdq_hash(path: Path) -> tuple[str, int]:
    """The image's PDQ hash (64 hex digits) and its quality (0-100), as python-threatexchange's
    PDQ hasher computes them (pdqhash on the RGB pixels)."""
    try:
        import numpy as np
        import pdqhash
        from PIL import Image
    except ImportError as err:
        raise Missing(f"PDQ needs the `exchange` extra ({err.name} is missing)", EXTRA) from None
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (Image.DecompressionBombError, OSError) as err:
        raise Invalid(f"{path}: not hashed: {err}") from None
    bits, quality = pdqhash.compute(pixels)
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def vpdq_hash(path: Path, seconds_per_hash: float) -> str:
    """The video's vPDQ hash as python-threatexchange's VPDQSignal writes it."""
    try:
        import vpdq  # noqa: F401  (the native hasher, which python-threatexchange wraps)
    except ImportError:
        raise Missing("vPDQ needs the vpdq library", VPDQ_NEEDS) from None
    try:
        from threatexchange.extensions.vpdq.vpdq import VPDQSignal
    except ImportError as err:
        raise Missing(f"vPDQ needs the `exchange` extra ({err.name} is missing)", EXTRA) from None
    try:
        return str(VPDQSignal.hash_from_file(path, seconds_per_hash=seconds_per_hash))
    except Exception as err:  # the native decoder's errors have no common type
        raise Invalid(f"{path}: vpdq could not read the video: {err}") from None


@contextmanager
def stderr_into(log: Path) -> Iterator[None]:
    """File descriptor 2 (where native code and its ffmpeg write) into `log` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with log.open("wb") as sink:
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tmk_hash(path: Path, ffmpeg: str) -> str:
    """The video's TMK+PDQF feature vectors (the .tmk file) in base64, by tmkpy, which runs
    ffmpeg through a shell: it is given a link with a plain name, never the file's own."""
    try:
        import tmkpy
    except ImportError:
        raise Missing("TMK needs the tmkpy library", TMK_NEEDS) from None
    program = shutil.which(ffmpeg)
    if program is None:
        raise Missing(f"TMK needs ffmpeg ({ffmpeg!r} is not found)", "--ffmpeg PATH") from None
    with tempfile.TemporaryDirectory(prefix="eucp-tmk-") as folder:
        link, out, log = (Path(folder) / name for name in ("video", "hash.tmk", "ffmpeg.log"))
        link.symlink_to(path.resolve())
        with stderr_into(log):
            vectors = tmkpy.hashVideo(str(link), shlex.quote(program))
            written = vectors.getFrameFeatureCount() > 0 and vectors.writeToOutputFile(
                str(out), "eucp-hash"
            )
        if not written:
            said = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise Invalid(f"{path}: tmk could not read the video", " ".join(said) or None)
        return base64.b64encode(out.read_bytes()).decode()


def hash_file(
    path: Path,
    wanted: Sequence[HashAlgorithm],
    labels: Labels,
    *,
    seconds_per_hash: float = 1.0,
    ffmpeg: str = "ffmpeg",
) -> Hashed:
    """The file's identifiers: those `wanted`, or by default the ones for its kind (md5 and
    sha256 always; PDQ for an image; vPDQ for a video where vpdq is installed, a note where
    not). An image hash asked of a file that is none is `Invalid`."""
    kind = kind_of(path)
    chosen = list(dict.fromkeys(wanted)) or list(DEFAULT[kind])
    found: list[HashIdentifier] = []
    notes: list[str] = []

    def add(algorithm: HashAlgorithm, value: str, quality: int | None = None) -> None:
        try:
            found.append(
                HashIdentifier(algorithm=algorithm, value=value, quality=quality, labels=labels)
            )
        except ValidationError as err:
            raise Invalid(f"{path}: {algorithm}: {describe_invalid(err)}") from None

    if HashAlgorithm.md5 in chosen or HashAlgorithm.sha256 in chosen:
        md5, sha256 = exact_hashes(path)
        if HashAlgorithm.md5 in chosen:
            add(HashAlgorithm.md5, md5)
        if HashAlgorithm.sha256 in chosen:
            add(HashAlgorithm.sha256, sha256)
    if HashAlgorithm.pdq in chosen:
        if kind != "image":
            raise Invalid(f"{path}: pdq is for images, and this is none that Pillow reads")
        value, quality = pdq_hash(path)
        add(HashAlgorithm.pdq, value, quality)
        notes.append(f"pdq quality {quality}")
        if quality < PDQ_FLOOR:
            notes.append(f"under {PDQ_FLOOR}: eucp drops it as low quality (a flat image?)")
    if HashAlgorithm.vpdq in chosen:
        try:
            frames = json.loads(vpdq_hash(path, seconds_per_hash))
        except Missing as missing:
            if wanted:
                raise
            notes.append(f"no vpdq: {missing.message}; {missing.hint}")
        else:
            step = -(-len(frames) // MAX_VPDQ_FRAMES)  # every frame, or every step-th
            if step > 1:
                frames = frames[::step]
                notes.append(f"vpdq: a frame every {step * seconds_per_hash:g} s (a long video)")
            add(HashAlgorithm.vpdq, json.dumps(frames))
    if HashAlgorithm.tmk in chosen:
        add(HashAlgorithm.tmk, tmk_hash(path, ffmpeg))
    return Hashed(path, found, notes)


def labels_of(entity: str | None, content_type: str | None, behaviour: str | None) -> Labels:
    try:
        return Labels(entity=entity, content_type=content_type, behaviour=behaviour)
    except ValidationError as err:
        raise Invalid(f"labels: {describe_invalid(err)}") from None


@click.command("hash")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@click.option(
    "-a",
    "--algorithm",
    "algorithms",
    multiple=True,
    type=click.Choice([a.value for a in HashAlgorithm]),
    help="compute this one (repeat); default: md5, sha256, and pdq for an image or vpdq for a "
    "video where vpdq is installed. tmk only when asked (each is about 350 KB)",
)
@click.option("--entity", help="label: the entity that produced the content (GIFCT taxonomy)")
@click.option("--content-type", help="label: the type of content (GIFCT taxonomy)")
@click.option("--behaviour", help="label: the behaviour it shows (GIFCT taxonomy)")
@click.option(
    "--seconds-per-hash",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="vpdq: one frame hashed every this many seconds",
)
@click.option("--ffmpeg", default="ffmpeg", show_default=True, help="tmk: the ffmpeg program")
def hash_files(
    files: tuple[Path, ...],
    algorithms: tuple[str, ...],
    entity: str | None,
    content_type: str | None,
    behaviour: str | None,
    seconds_per_hash: float,
    ffmpeg: str,
) -> None:
    """Identifiers of FILEs, computed here: the content never leaves this machine.

    Writes one identifier a line on stdout, as the API's JSON with the labels given, for
    `eucp crisis add-content INCIDENT --from FILE` (or activate, order, sightings); says on
    stderr what each file gave. Nothing is written unless every file could be hashed.
    """
    labels = labels_of(entity, content_type, behaviour)
    wanted = [HashAlgorithm(a) for a in algorithms]
    results = [
        hash_file(path, wanted, labels, seconds_per_hash=seconds_per_hash, ffmpeg=ffmpeg)
        for path in files
    ]
    for result in results:
        for identifier in result.identifiers:
            click.echo(identifier.model_dump_json())
        made = ", ".join(str(i.algorithm) for i in result.identifiers)
        said = "".join(f"; {note}" for note in result.notes)
        click.echo(f"{result.path}: {made}{said}", err=True)
