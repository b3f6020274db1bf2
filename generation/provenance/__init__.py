"""Provenance: the signing chain and C2PA manifests carried by every clip that leaves Montage.

Plain functions over bytes and paths; callers pass paths and configuration in, nothing here
reads Django settings.
"""
