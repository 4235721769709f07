"""Maintainer tools: not used when compiling rules."""
