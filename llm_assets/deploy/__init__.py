"""Deployment profiles: code locations that run the same assets on other infrastructure."""
