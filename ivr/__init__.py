"""Centralino ivr package."""
