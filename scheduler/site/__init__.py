"""The site file: the world a Waldstadt service runs (devices, members, communities, lighting).

One YAML document, validated by pydantic models that forbid unknown keys, so that every error
is one :class:`~kernel.errors.ConfigError` naming the key path, the reason, the file and the
line (``members.3.pv.0.device: unknown device 'hh04-pv' (site.yaml, line 41)``). After the
shape, the cross references are checked: devices, meters, community members, key shares and
tariffs must name things that exist, a device serves one role only, a member takes part in at
most five communities. The ``lighting:`` section is :class:`lighting.config.LightingConfig`
unchanged. The reference of every key is ``docs/site.md``; a complete example is
``examples/site.yaml``.

Clock times (``arrival``, ``window_start`` …) must be quoted (``"18:00"``): unquoted, YAML 1.1
reads 18:00 as the number 1080.
"""

from scheduler.site.assets import (
    BatteryConfig,
    DeviceConfig,
    EvConfig,
    MemberConfig,
    PvConfig,
    SiteInfo,
    StorageHeaterConfig,
)
from scheduler.site.community import (
    CommunityConfig,
    CommunityMemberConfig,
    DispatchConfig,
    KeyConfig,
    SettlementConfig,
    TariffConfig,
)
from scheduler.site.fields import SINCE_EVER, LocalTime, value_utc
from scheduler.site.load import load_site, load_site_text, site_from_data
from scheduler.site.model import Site, SiteReferenceError
from scheduler.site.plausibility import MeterExchangeConfig, PlausibilityConfig

__all__ = [
    "SINCE_EVER",
    "BatteryConfig",
    "CommunityConfig",
    "CommunityMemberConfig",
    "DeviceConfig",
    "DispatchConfig",
    "EvConfig",
    "KeyConfig",
    "LocalTime",
    "MemberConfig",
    "MeterExchangeConfig",
    "PlausibilityConfig",
    "PvConfig",
    "SettlementConfig",
    "Site",
    "SiteInfo",
    "SiteReferenceError",
    "StorageHeaterConfig",
    "TariffConfig",
    "load_site",
    "load_site_text",
    "site_from_data",
    "value_utc",
]
