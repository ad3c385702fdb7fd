"""Tests of runstream.integrations, each in a real short training (nox -s integrations)."""
