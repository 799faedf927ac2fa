"""gridactor's own Hot Rod client (Trio) and its SASL mechanisms."""

from __future__ import annotations

from gridactor.client.hotrod import (
    CLIENT_VERSIONS as CLIENT_VERSIONS,
)
from gridactor.client.hotrod import (
    EntryMetadata as EntryMetadata,
)
from gridactor.client.hotrod import (
    HotRodAuthenticationError as HotRodAuthenticationError,
)
from gridactor.client.hotrod import (
    HotRodClient as HotRodClient,
)
from gridactor.client.hotrod import (
    HotRodClientError as HotRodClientError,
)
from gridactor.client.hotrod import (
    HotRodConnectionError as HotRodConnectionError,
)
from gridactor.client.hotrod import (
    HotRodError as HotRodError,
)
from gridactor.client.hotrod import (
    PingInfo as PingInfo,
)
from gridactor.client.hotrod import (
    SaslClientMechanism as SaslClientMechanism,
)
from gridactor.client.hotrod import (
    WriteResult as WriteResult,
)
from gridactor.client.hotrod import (
    open_hotrod_client as open_hotrod_client,
)
from gridactor.client.hotrod import (
    open_hotrod_client_on_stream as open_hotrod_client_on_stream,
)
from gridactor.client.sasl_client import PlainClient as PlainClient
from gridactor.client.sasl_client import ScramClient as ScramClient
from gridactor.client.sasl_client import client_mechanism as client_mechanism
