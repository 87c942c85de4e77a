"""Where flags live: one interface, interchangeable stores (environment, SSM, in memory)."""

from router.sources.base import FlagSource
from router.sources.environment import EnvironmentSource
from router.sources.ssm import SSMParameterSource
from router.sources.static import StaticSource

__all__ = ["FlagSource", "EnvironmentSource", "SSMParameterSource", "StaticSource"]
