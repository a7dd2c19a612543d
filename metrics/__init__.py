"""Centralino metrics package."""
