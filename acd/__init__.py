"""Centralino acd package."""
