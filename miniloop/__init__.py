"""miniloop: the whole Mojaloop payment switch in one Python process."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("miniloop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
