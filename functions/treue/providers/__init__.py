"""Reward providers: who issues gift cards and receives donations (the only code that talks to them)."""
