"""The framed gateway-to-core link (see frames.py for the wire format)."""
