"""Invoke task modules, one per namespace; tasks.py assembles them."""
