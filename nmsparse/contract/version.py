"""The project version, in one place (the distribution, the sidecars and the FuseSoC cores)."""

VERSION = "0.2.0"
