"""Centralino server package."""
