"""Configuration: Infinispan server XML → validated, frozen model.

Public API: :func:`load_config`, :func:`unsupported_features`, :func:`check_config`,
:func:`offered_mechanisms`, and for the REST API :func:`parse_cache_definition`,
:func:`cache_settings_to_json`, :func:`cache_settings_to_xml`. Model classes live in
:mod:`gridactor.config.model`.
"""

from __future__ import annotations

from gridactor.config.cache_definition import (
    cache_settings_to_json as cache_settings_to_json,
)
from gridactor.config.cache_definition import (
    cache_settings_to_xml as cache_settings_to_xml,
)
from gridactor.config.cache_definition import (
    parse_cache_definition as parse_cache_definition,
)
from gridactor.config.check import CheckReport as CheckReport
from gridactor.config.check import check_config as check_config
from gridactor.config.check import offered_mechanisms as offered_mechanisms
from gridactor.config.loader import load_config as load_config
from gridactor.config.model import FeatureUse as FeatureUse
from gridactor.config.model import ServerConfig as ServerConfig
from gridactor.config.model import unsupported_features as unsupported_features
