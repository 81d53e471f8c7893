"""Connecting to Temporal the one way every eucp process does: pydantic payloads, encrypted
when codec keys are configured, TLS from settings."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from eucp.runtime.codec import EncryptionCodec
from eucp.runtime.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """The converter of every client, worker and Replayer: pydantic JSON, and with codec keys
    AES-256-GCM over every payload, failure messages and stack traces included (they move into
    the encrypted failure attributes). Without keys, plain `pydantic_data_converter`."""
    codec = EncryptionCodec.from_settings(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert is None and settings.temporal_tls_ca is None:
        return False
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
        if settings.temporal_tls_ca
        else None,
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
    )


def runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting the SDK's metrics (workflow and activity tasks, latencies, custom
    eucp counters) for Prometheus, when `EUCP_METRICS_ADDRESS` is set."""
    if settings.metrics_address is None:
        return None
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=settings.metrics_address))
    )


async def connect(settings: Settings, with_metrics: bool = False) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls_config(settings),
        data_converter=data_converter(settings),
        runtime=(runtime(settings) if with_metrics else None) or Runtime.default(),
    )
