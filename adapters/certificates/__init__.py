"""The e-certificate service (电子证照): licences signed by their issuing department, verifiable by anyone."""

from adapters.certificates.app import create_app
from adapters.certificates.demo_data import seed

__all__ = ["create_app", "seed"]
