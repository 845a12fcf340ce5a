"""Helpers shared by the test tiers: tiny models, runtime processes, waiting on conditions."""
