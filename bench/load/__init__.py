"""A load test of the whole system on loopback: ``python -m bench.load`` (see ``__main__``).

Nothing here imports Django or locust at package level: the locust process imports
``bench.load.routes`` and must not load Django, and the runner must set its environment before
Django's settings are read.
"""
