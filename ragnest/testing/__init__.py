"""Helpers for testing ragnest and its plugins: the component contract checks."""

from ragnest.testing.contracts import check_component_contract

__all__ = ["check_component_contract"]
