"""Hashing at the source (issue 14): `eucp hash` turns files into identifiers on this machine,
with the hashers of Meta's tools (python-threatexchange's PDQ, from the `exchange` extra; vpdq
and tmkpy, from the `video` extra), on images and animations the test draws with Pillow; and
the video identifiers (vPDQ, TMK) are validated and deduplicated by their rules, through a
real incident on the dev server. `make test` installs every hasher (make exchange, make
video): a test whose hasher is missing fails, saying what to install, and never skips."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import random
import re
import shutil
import socket
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from eucp.cli import main
from eucp.cli.inputs import read_identifiers
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import (
    MAX_VPDQ_FRAMES,
    AnyIdentifier,
    FrameIndex,
    HashAlgorithm,
    HashIdentifier,
    IdentifierIndex,
    IndexSnapshot,
    Labels,
    Verdict,
    parse_identifier,
    vpdq_frames,
)
from tests.conftest import COORDINATOR, Protocol
from tests.protocol_steps import activated

LABELS = ["--entity", "Example Front", "--content-type", "video", "--behaviour", "attack"]
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing answers


# ---- images drawn here ----------------------------------------------------------------------


def an_image(seed: int, size: int = 512) -> Image.Image:
    """Shapes in colours on a coloured ground: a picture with structure, as PDQ wants."""
    rng = random.Random(seed)

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    image = Image.new("RGB", (size, size), colour())
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(size), rng.randrange(size)
        box = (x, y, x + rng.randrange(20, size // 2), y + rng.randrange(20, size // 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour())
    return image


def saved(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, **options)
    return path


def distance(a: HashIdentifier, b: HashIdentifier) -> int:
    return (int(a.value, 16) ^ int(b.value, 16)).bit_count()


def run_hash(*args: str) -> tuple[list[AnyIdentifier], str]:
    """`eucp hash ARGS`: the identifiers it wrote, read back as `--from FILE` reads them, and
    what it said on stderr."""
    ran = CliRunner().invoke(main, ["hash", *args])
    assert ran.exit_code == 0, (ran.output, ran.stderr)
    written = io.StringIO(ran.stdout)
    written.name = "hashed.jsonl"  # type: ignore[misc]  # as the file `--from` opens
    return read_identifiers([], written), ran.stderr


def pdq_of(identifiers: list[AnyIdentifier]) -> HashIdentifier:
    [pdq] = [i for i in identifiers if isinstance(i, HashIdentifier) and i.algorithm == "pdq"]
    return pdq


@contextmanager
def offline() -> Iterator[None]:
    """Any attempt to open a connection fails the test: the content never leaves."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("eucp hash opened a network connection")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


def test_a_copy_reencoded_or_resized_is_within_31_and_another_image_beyond(
    tmp_path: Path,
) -> None:
    original = an_image(1)
    files = [
        saved(original, tmp_path / "original.png"),
        saved(original, tmp_path / "reencoded.jpg", quality=30),
        saved(original.resize((200, 200), Image.Resampling.LANCZOS), tmp_path / "small.png"),
        saved(an_image(2), tmp_path / "other.png"),
    ]
    with offline():
        found, said = run_hash(*map(str, files))
    pdqs = [i for i in found if isinstance(i, HashIdentifier) and i.algorithm == "pdq"]
    first, reencoded, small, other = pdqs
    assert all(p.quality is not None and p.quality >= 50 for p in pdqs), said
    assert distance(first, reencoded) <= 31
    assert distance(first, small) <= 31
    assert distance(first, other) > 31
    index = IdentifierIndex()
    verdicts = [index.classify(p) for p in pdqs]
    assert verdicts == [Verdict.new, Verdict.duplicate, Verdict.duplicate, Verdict.new]


def test_the_pdq_hash_is_the_one_threatexchange_computes(tmp_path: Path) -> None:
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

    for n, mode in enumerate(["RGB", "L", "LA"]):
        path = saved(an_image(10 + n).convert(mode), tmp_path / f"{mode}.png")
        found, _ = run_hash("--algorithm", "pdq", str(path))
        value, quality = pdq_from_file(path)
        assert (pdq_of(found).value, pdq_of(found).quality) == (value, quality)


def test_a_flat_image_has_low_quality_and_eucp_refuses_it(tmp_path: Path) -> None:
    flat = saved(Image.new("RGB", (300, 300), (128, 128, 128)), tmp_path / "flat.png")
    found, said = run_hash(str(flat))
    pdq = pdq_of(found)
    assert pdq.quality is not None and pdq.quality < 50
    assert "eucp drops it as low quality" in said
    assert IdentifierIndex().classify(pdq) is Verdict.low_quality


def test_the_output_is_the_apis_json_with_labels_read_by_from(tmp_path: Path) -> None:
    photo = saved(an_image(3), tmp_path / "photo.jpg", quality=90)
    manifesto = tmp_path / "manifesto.pdf"
    manifesto.write_bytes(b"%PDF-1.4 not really a manifesto\n")
    with offline():
        ran = CliRunner().invoke(main, ["hash", str(photo), str(manifesto), *LABELS])
    assert ran.exit_code == 0, ran.output
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [(line["kind"], line["algorithm"]) for line in lines] == [
        ("hash", "md5"), ("hash", "sha256"), ("hash", "pdq"), ("hash", "md5"), ("hash", "sha256"),
    ]  # fmt: skip
    labels = Labels(entity="Example Front", content_type="video", behaviour="attack")
    assert all(Labels.model_validate(line["labels"]) == labels for line in lines)
    assert lines[3]["value"] == hashlib.md5(manifesto.read_bytes()).hexdigest()
    assert lines[4]["value"] == hashlib.sha256(manifesto.read_bytes()).hexdigest()
    assert f"{photo}: md5, sha256, pdq; pdq quality" in ran.stderr
    assert f"{manifesto}: md5, sha256\n" in ran.stderr

    out = tmp_path / "identifiers.jsonl"
    out.write_text(ran.stdout)
    with out.open() as source:
        assert len(read_identifiers([], source)) == 5
    # `crisis add-content --from` reads the file, then finds no API: exit 3, not 2 (invalid)
    env = {"EUCP_API_URL": UNREACHABLE, "EUCP_TOKEN": "eucp_x"}
    add = ["crisis", "add-content", "inc-1", "--from", str(out)]
    assert CliRunner(env=env).invoke(main, add).exit_code == 3
    out.write_text(ran.stdout.replace('"sha256"', '"sha512"', 1))
    refused = CliRunner(env=env).invoke(main, add)
    assert refused.exit_code == 2
    assert "line 2: hash.algorithm: Input should be 'md5'" in refused.stderr


def test_without_the_hashers_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("pdqhash", "vpdq", "tmkpy"):
        monkeypatch.setitem(sys.modules, module, None)  # its import fails
    photo = saved(an_image(4), tmp_path / "photo.png")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")
    missing = CliRunner().invoke(main, ["hash", str(photo)])
    assert missing.exit_code == 3
    assert "PDQ needs the `exchange` extra" in missing.stderr
    assert "pip install 'eucp[exchange]'" in missing.stderr
    assert missing.stdout == ""  # nothing, unless every file could be hashed

    found, said = run_hash(str(clip))  # by default, a video gives its exact hashes and a note
    assert [i.algorithm for i in found if isinstance(i, HashIdentifier)] == ["md5", "sha256"]
    assert "no vpdq: vPDQ needs the vpdq library" in said
    assert "libavcodec-dev" in said
    asked = CliRunner().invoke(main, ["hash", "-a", "vpdq", str(clip)])
    assert asked.exit_code == 3
    assert "vPDQ needs" in asked.stderr
    tmk = CliRunner().invoke(main, ["hash", "-a", "tmk", str(clip)])
    assert tmk.exit_code == 3
    assert "apt-get install swig" in tmk.stderr
    image_of_text = CliRunner().invoke(main, ["hash", "-a", "pdq", str(clip)])
    assert image_of_text.exit_code == 2
    assert "pdq is for images" in image_of_text.stderr


# ---- videos, by the hashers `make video` builds (FFmpeg's libraries, SWIG, ffmpeg) -----------


def installed(module: str, program: str | None = None) -> None:
    """A video hasher's library (and the program it runs) is here, or the test fails."""
    how = "make video installs it (docs/platforms.md, Hashing at the source)"
    assert importlib.util.find_spec(module) is not None, f"{module} is not installed: {how}"
    assert program is None or shutil.which(program), f"no {program} program: {how}"


def animated(path: Path, seed: int, size: int = 512) -> Path:
    """A 6-second animated GIF (FFmpeg decodes it): a new picture every second."""
    frames = [an_image(seed + n // 4).resize((size, size)) for n in range(24)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=250, loop=0)
    return path


def test_a_video_and_its_copy_by_vpdq(tmp_path: Path) -> None:
    installed("vpdq")
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    files = [
        animated(tmp_path / "a.gif", 30),
        animated(tmp_path / "a-small.gif", 30, size=256),
        animated(tmp_path / "b.gif", 60),
    ]
    with offline():
        found, said = run_hash("-a", "vpdq", *map(str, files))
    videos = [i for i in found if isinstance(i, HashIdentifier)]
    assert [v.algorithm for v in videos] == ["vpdq"] * 3, said
    index = IdentifierIndex()
    assert [index.classify(v) for v in videos] == [Verdict.new, Verdict.duplicate, Verdict.new]
    a, small, b = (v.value for v in videos)
    assert VPDQSignal.compare_hash(a, small).match  # the library agrees, on its own defaults
    assert not VPDQSignal.compare_hash(a, b).match


def test_a_video_by_tmk(tmp_path: Path) -> None:
    installed("tmkpy", "ffmpeg")
    video = animated(tmp_path / "a video's name; with $(odd) 'characters'.gif", 30)
    with offline():
        found, _ = run_hash("-a", "tmk", str(video))
        again, _ = run_hash("-a", "tmk", str(video))
    [tmk] = found
    assert isinstance(tmk, HashIdentifier) and tmk.algorithm == "tmk"
    assert again == found  # the same file, the same hash: a repeat
    index = IdentifierIndex()
    assert [index.classify(i) for i in [*found, *again]] == [Verdict.new, Verdict.duplicate]


def test_a_long_video_is_hashed_less_often(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 1,800 frames at a hash a second (half an hour), every second or third frame."""
    frames = a_video(5, 4000)
    hour = json.dumps([f"{f:064x},90,{float(n):.3}" for n, f in enumerate(frames)])
    monkeypatch.setattr("eucp.cli.hash.vpdq_hash", lambda path, seconds: hour)
    clip = tmp_path / "long.mp4"
    clip.write_bytes(b"a long video")
    found, said = run_hash(str(clip))
    [video] = [i for i in found if isinstance(i, HashIdentifier) and i.algorithm == "vpdq"]
    kept = vpdq_frames(video.value)
    assert [f.pdq for f in kept] == [f"{f:064x}" for f in frames[::3]]
    assert [f.timestamp for f in kept[:3]] == [0.0, 3.0, 6.0]
    assert "vpdq: a frame every 3 s" in said


# ---- video identifiers: vPDQ -----------------------------------------------------------------


def a_video(seed: int, frames: int = 30) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(256) for _ in range(frames)]


def altered(frames: list[int], bits: int, seed: int) -> list[int]:
    """Each frame with `bits` of its 256 flipped: the video re-encoded."""
    rng = random.Random(seed)
    return [f ^ sum(1 << b for b in rng.sample(range(256), bits)) for f in frames]


def vpdq(frames: list[int], quality: int = 90) -> HashIdentifier:
    """A vPDQ hash of these frames, one a second, written as VPDQSignal writes one."""
    listed = [f"{f:064x},{quality},{float(n):.3}" for n, f in enumerate(frames)]
    return HashIdentifier(algorithm=HashAlgorithm.vpdq, value=json.dumps(listed))


def test_a_vpdq_hash_is_the_frames_threatexchange_writes() -> None:
    frames = a_video(1, 3)
    library = json.dumps([f"{f:064X},100,{float(n):.3}" for n, f in enumerate(frames)])
    parsed = parse_identifier(f"vpdq:{library}")
    assert isinstance(parsed, HashIdentifier)
    assert parsed.value == library.lower()  # the library's text, its hex in lower case
    assert [f.pdq for f in vpdq_frames(parsed.value)] == [f"{f:064x}" for f in frames]
    assert parse_identifier(parsed.model_dump_json()) == parsed
    assert parsed.key == f"vpdq:sha256:{hashlib.sha256(parsed.value.encode()).hexdigest()}"
    good = f"{frames[0]:064x}"
    for value, reason in [
        ("[]", "1 to 1800 frames"),
        (json.dumps([good] * 2), "frame 0 is"),
        (json.dumps([f"{good},101,0.0"]), "quality is 0-100"),
        (json.dumps([f"{good},50,-1.0"]), "frame 0 is"),
        (json.dumps([f"{good[:-1]},50,0.0"]), "frame 0 is"),
        (json.dumps([f"{good},50,nan"]), "frame 0 is"),
        (json.dumps([f"{good},50,1.0"] * (MAX_VPDQ_FRAMES + 1)), "got 1801"),
        ('{"frames": []}', "a JSON list"),
        ("not json", "not JSON"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_identifier(f"vpdq:{value}")
    with pytest.raises(ValueError, match="each frame has its own"):
        HashIdentifier(algorithm=HashAlgorithm.vpdq, value=parsed.value, quality=90)


def test_vpdq_videos_match_by_the_share_of_their_frames() -> None:
    index = IdentifierIndex()
    original = a_video(1, 40)
    assert index.classify(vpdq(original)) is Verdict.new
    assert index.classify(vpdq(altered(original, 12, seed=2))) is Verdict.duplicate
    assert index.classify(vpdq(original[:30] + a_video(3, 10))) is Verdict.duplicate  # 75%
    assert index.classify(vpdq(original[:20] + a_video(4, 20))) is Verdict.new  # 50% of it
    assert index.classify(vpdq(original[:30])) is Verdict.duplicate  # all its frames, 75% of ours
    assert index.classify(vpdq(original[:20])) is Verdict.new  # 50% of the original's
    assert index.classify(vpdq(altered(original, 40, seed=5))) is Verdict.new  # 40 bits off
    assert index.classify(vpdq(a_video(6, 40), quality=49)) is Verdict.low_quality
    # frames under the quality floor do not count: a copy of ours with poor frames added
    poor = json.loads(vpdq(a_video(7, 40), quality=10).value)
    mixed = json.loads(vpdq(original).value) + poor
    copy = HashIdentifier(algorithm=HashAlgorithm.vpdq, value=json.dumps(mixed))
    assert index.classify(copy) is Verdict.duplicate

    restored = IdentifierIndex.restore(index.snapshot(), 31, 50)  # across continue-as-new
    assert restored.classify(vpdq(altered(original, 10, seed=8))) is Verdict.duplicate
    assert restored.classify(vpdq(a_video(9))) is Verdict.new
    assert restored.classify(vpdq(a_video(9))) is Verdict.duplicate


def test_past_the_frames_it_holds_a_vpdq_hash_is_matched_but_not_held() -> None:
    index = IdentifierIndex(vpdq_index_frames=50)
    first, second = a_video(1, 40), a_video(2, 40)
    assert index.classify(vpdq(first)) is Verdict.new  # held: 40 frames
    assert index.classify(vpdq(second)) is Verdict.new  # 80 would be too many: not held
    assert index.classify(vpdq(altered(first, 10, seed=3))) is Verdict.duplicate
    assert index.classify(vpdq(second)) is Verdict.duplicate  # the same hash again
    assert index.classify(vpdq(altered(second, 10, seed=4))) is Verdict.new  # unseen
    assert len(index.snapshot().vpdq) == 1


@pytest.mark.parametrize("limit", [31, 40, 47, 60])
def test_the_frame_index_finds_every_pair_within_the_distance(limit: int) -> None:
    """Against every pair compared, on frames near and far (the multi-index for up to 47 bits,
    every pair beyond)."""
    rng = random.Random(limit)
    base = a_video(limit, 30)
    held = FrameIndex(limit)
    videos = []
    for n in range(6):
        video = [
            f ^ sum(1 << b for b in rng.sample(range(256), rng.randrange(0, 70))) for f in base
        ] + a_video(100 * limit + n, 5)
        videos.append(video)
        held.add(video)
    query = altered(base, 25, seed=limit)
    expected = {}
    for v, video in enumerate(videos):
        pairs = [(q, c) for q, a in enumerate(query) for c, b in enumerate(video)]
        near = [(q, c) for q, c in pairs if (query[q] ^ video[c]).bit_count() <= limit]
        if near:
            expected[v] = (len({q for q, _ in near}), len({c for _, c in near}))
    assert held.matches(query) == expected
    matched = sum(q for q, _ in expected.values())
    assert 0 < matched < len(query) * len(videos)  # some frames near, some not


# ---- video identifiers: TMK ------------------------------------------------------------------


def a_tmk(seed: int, frames: int = 77, periods: int = 4, coefficients: int = 32) -> bytes:
    """A .tmk file laid out as tmk-hash-video writes it (TMK+PDQF), its features random."""
    rng = random.Random(seed)
    header = struct.pack("<4s4s4s5i", b"TMK1", b"FVEC", b"PDQF", 15, periods, coefficients, 256,
                         frames)  # fmt: skip
    floats = coefficients + 256 + 2 * periods * coefficients * 256
    body = struct.pack(f"<{periods}i", *[2731, 4391, 9767, 14653, 20011][:periods])
    return header + body + struct.pack(f"<{floats}f", *(rng.uniform(-1, 1) for _ in range(floats)))


def test_a_tmk_hash_is_the_tmk_file_in_base64_deduplicated_exactly() -> None:
    data = a_tmk(1)
    assert len(data) == 263_344  # as tmk-hash-video writes a video's
    value = base64.b64encode(data).decode()
    tmk = parse_identifier(f"tmk:{value}")
    assert isinstance(tmk, HashIdentifier)
    assert tmk.key == f"tmk:sha256:{hashlib.sha256(data).hexdigest()}"  # sha256sum of the file
    assert parse_identifier(tmk.model_dump_json()) == tmk
    index = IdentifierIndex()
    assert index.classify(tmk) is Verdict.new
    assert index.classify(tmk) is Verdict.duplicate
    assert index.classify(parse_identifier(f"tmk:{base64.b64encode(a_tmk(2)).decode()}")) is (
        Verdict.new
    )
    nan = bytearray(data)
    nan[-4:] = struct.pack("<f", float("nan"))
    for bad, reason in [
        (b"TMK1FVECRSNT" + data[12:], "TMK+PDQF"),
        (data[:-4], "263344 bytes, got 263340"),
        (a_tmk(3, frames=0), "no frames"),
        (a_tmk(3, periods=5), "1-4 periods"),
        (bytes(nan), "finite"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_identifier(f"tmk:{base64.b64encode(bad).decode()}")
    with pytest.raises(ValueError, match="not base64"):
        parse_identifier("tmk:not base64!")
    with pytest.raises(ValueError, match="has none of its own"):
        HashIdentifier(algorithm=HashAlgorithm.tmk, value=value, quality=50)


def test_what_stored_histories_hold_still_decodes() -> None:
    """Identifiers and snapshots written before video hashes decode as they were."""
    old = {"kind": "hash", "algorithm": "pdq", "value": "AB" * 32, "quality": 80}
    assert HashIdentifier.model_validate(old).value == "ab" * 32
    snapshot = IndexSnapshot.model_validate({"exact": ["md5:" + "0" * 32], "pdq": ["ab" * 32]})
    assert snapshot.vpdq == []
    index = IdentifierIndex.restore(snapshot, 31, 50)
    assert index.classify(parse_identifier("md5:" + "0" * 32)) is Verdict.duplicate
    assert index.snapshot() == snapshot  # no video: as it was
    assert IdentifierIndex().snapshot() == IndexSnapshot()


# ---- end to end: a real incident on the dev server -----------------------------------------


async def test_hashed_at_the_source_a_copy_is_dropped_as_a_duplicate(
    eucp: Protocol, tmp_path: Path
) -> None:
    original = an_image(21)
    first = saved(original, tmp_path / "attack.png")
    copy = saved(original, tmp_path / "attack-reupload.jpg", quality=40)
    flat = saved(Image.new("RGB", (320, 240), (20, 20, 20)), tmp_path / "black.png")
    from_first, _ = run_hash(str(first), *LABELS)
    from_copy, _ = run_hash(str(copy), *LABELS)
    from_flat, _ = run_hash("-a", "pdq", str(flat))

    incident = await eucp.report()
    iru = eucp.incidents.as_participant(incident, COORDINATOR)
    await activated(iru, *from_first)  # md5, sha256, pdq: items 1-3
    answer = await iru.act(Action.add_content, identifiers=from_copy)
    assert answer.duplicates == 1  # its PDQ hash, within 31 bits of the first's
    assert answer.accepted_items == [4, 5]  # the copy's own md5 and sha256
    answer = await iru.act(Action.add_content, identifiers=from_flat)
    assert (answer.low_quality, answer.accepted_items) == (1, [])

    original_video = a_video(22, 40)
    tmk = HashIdentifier(algorithm=HashAlgorithm.tmk, value=base64.b64encode(a_tmk(22)).decode())
    answer = await iru.act(Action.add_content, identifiers=[vpdq(original_video), tmk])
    assert answer.accepted_items == [6, 7]
    reuploads = [vpdq(altered(original_video, 10, seed=23)), tmk]
    answer = await iru.act(Action.add_content, identifiers=reuploads)
    assert (answer.duplicates, answer.accepted_items) == (2, [])
    status = await eucp.incidents.status(incident)
    assert status.crisis.items == 7
