"""eucp as a hash-sharing exchange of python-threatexchange, for a platform's own matcher
(Hasher-Matcher-Actioner, Open Media Match or the `threatexchange` command line).

An extension module of that library: `threatexchange config extensions add eucp.exchange`
makes the `eucp` exchange available, configured with eucp's API address and, from
`EUCP_TOKEN` or `~/.tx_eucp_token`, the platform's token. Its fetch brings the platform's
own tasks, across its incidents, as the library's signals; its opinions and sightings go
back to eucp as false-positive reports and sightings. It speaks to eucp through the HTTP
client alone (`eucp.client`), never the server.

Needs the optional extra: `pip install 'eucp[exchange]'`.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from eucp.exchange.api import (
    EucpCheckpoint,
    EucpCollabConfig,
    EucpCredentials,
    EucpSignalExchangeAPI,
    EucpSignalMetadata,
    EucpTask,
)

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(EucpSignalExchangeAPI,))

__all__ = [
    "TX_MANIFEST",
    "EucpCheckpoint",
    "EucpCollabConfig",
    "EucpCredentials",
    "EucpSignalExchangeAPI",
    "EucpSignalMetadata",
    "EucpTask",
]
