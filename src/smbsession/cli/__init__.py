"""Command-line front ends: parameter binding, output formats, commands."""
