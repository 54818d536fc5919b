"""The item catalogue service (政务服务事项目录): a relying party of the provider with its own database."""

from adapters.catalogue.app import create_app, load_demo_items, seed

__all__ = ["create_app", "load_demo_items", "seed"]
