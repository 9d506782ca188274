"""Saved exports: rebuilt once per local day in their domain's time zone, served from a stable link."""
