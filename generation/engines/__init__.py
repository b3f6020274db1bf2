"""Video engines: one interface (:mod:`generation.engines.base`), several implementations."""
