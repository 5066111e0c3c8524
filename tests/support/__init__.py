"""Test doubles for what lies outside the machine (the LLM), and helpers to load scripted answers."""
