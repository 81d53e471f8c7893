"""The payload codec: AES-256-GCM over every payload the SDK sends to Temporal.

Each payload is serialised whole (metadata and data) and encrypted with the current key under a
fresh random 96-bit nonce; the result is a payload of its own:

    metadata  encoding: binary/encrypted, encryption-key-id: <key id>
    data      nonce (12 bytes) || ciphertext || GCM tag (16 bytes)

The key id is also the associated data, so a payload relabelled with another key id does not
decrypt. Decoding accepts any known key (rotation: encrypt with the new key, keep the old ones
for reading) and passes unencrypted payloads through unchanged, so histories written before
encryption was switched on stay readable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError, Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec

from eucp.runtime.settings import CODEC_KEY_BYTES, Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12  # 96 bits, the GCM standard
TAG_BYTES = 16


class CodecError(Exception):
    """A payload this codec cannot decrypt."""


class UnknownKeyError(CodecError):
    """The payload was encrypted with a key this process does not hold."""

    def __init__(self, key_id: str, known: Iterable[str]) -> None:
        self.key_id = key_id
        held = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"payload encrypted with codec key {key_id!r}, which is not configured "
            f"(keys held: {held}); add it to EUCP_CODEC_KEYS to read this data"
        )


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM with several keys: encrypts with `current`, decrypts with any of `keys`."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"the current key {current!r} is not among the keys")
        for key_id, key in keys.items():
            if len(key) != CODEC_KEY_BYTES:
                raise ValueError(f"codec key {key_id!r}: AES-256 needs {CODEC_KEY_BYTES} bytes")
        self.current = current
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec | None:
        """The codec of `EUCP_CODEC_KEYS` / `EUCP_CODEC_CURRENT_KEY`; None when no key is set."""
        current = settings.codec_current_key_id()
        if current is None:
            return None
        return cls(settings.codec_key_map(), current)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted with the current key."""
        key_id = self.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(deterministic=True), key_id.encode()
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload as it was before `encrypt`; an unencrypted payload is returned as is."""
        if not is_encrypted(payload):
            return payload
        key_id = key_id_of(payload)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(key_id, self._ciphers)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise CodecError(f"encrypted payload (key {key_id!r}) is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise CodecError(
                f"encrypted payload does not authenticate under codec key {key_id!r}: "
                "the data was altered, or the key with this id is not the one that wrote it"
            ) from None
        decrypted = Payload()
        try:
            decrypted.ParseFromString(plain)
        except DecodeError as err:
            raise CodecError(f"decrypted payload (key {key_id!r}) is not a payload") from err
        return decrypted

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def key_id_of(payload: Payload) -> str:
    """The key id an encrypted payload names; CodecError when it names none."""
    raw = payload.metadata.get(KEY_ID)
    if not raw:
        raise CodecError(f"encrypted payload without {KEY_ID} metadata")
    return raw.decode(errors="replace")


def payloads_in(message: Message) -> Iterable[Payload]:
    """Every Payload nested anywhere in a protobuf message (history events, memos, failures)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for entry in value.values():
                    yield from payloads_in(entry)
        elif field.is_repeated:
            for item in value:
                yield from payloads_in(item)
        else:
            yield from payloads_in(value)


def history_key_ids(history: WorkflowHistory) -> set[str]:
    """The ids of the keys the history's encrypted payloads name."""
    return {key_id_of(p) for event in history.events for p in payloads_in(event) if is_encrypted(p)}


def check_keys(history: WorkflowHistory, codec: PayloadCodec | None) -> None:
    """Raise UnknownKeyError before replaying or reading a history whose payloads need a key
    this process lacks (with no EncryptionCodec, every key is missing)."""
    held = codec.key_ids if isinstance(codec, EncryptionCodec) else []
    missing = sorted(history_key_ids(history) - set(held))
    if missing:
        raise UnknownKeyError(missing[0], held)


def decrypt_history(history: WorkflowHistory, codec: PayloadCodec | None) -> WorkflowHistory:
    """A copy of the history with every payload decrypted, failures' encoded attributes
    included: for reading inputs and results directly. `codec` is typically a client's
    `data_converter.payload_codec`; an encrypted payload and no EncryptionCodec raise
    UnknownKeyError (a history without encrypted payloads needs none). The Replayer does not
    need this: given the encrypted data converter it decrypts by itself."""
    events = []
    for event in history.events:
        copy = type(event)()
        copy.CopyFrom(event)
        for payload in payloads_in(copy):
            if is_encrypted(payload):
                if not isinstance(codec, EncryptionCodec):
                    raise UnknownKeyError(key_id_of(payload), [])
                payload.CopyFrom(codec.decrypt(payload))
        events.append(copy)
    return WorkflowHistory(history.workflow_id, events)
