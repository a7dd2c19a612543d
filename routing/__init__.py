"""Centralino routing package."""
