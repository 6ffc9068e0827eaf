"""Python helpers for ferry's wire protocol (proto/PROTOCOL.md), shared by
tools/ferry-conformance and the end-to-end tests (tests/frames.py)."""
