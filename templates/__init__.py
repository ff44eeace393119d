"""Jinja2 templates of the explorer (autoescaped); a package so they ship as package data."""
