"""Provider adapters: one per wire format, behind the Provider interface (base.py)."""
