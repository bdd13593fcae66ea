"""Samba backend: reads a local Samba server's state."""
