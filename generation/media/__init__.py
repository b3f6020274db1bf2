"""The media pipeline: MP4 encoding, the visible moving watermark, thumbnails and spritesheets.

Plain functions over numpy arrays, bytes and paths; nothing here touches Django, so the CPU
worker, the benchmark and the verification tools all share one implementation.
"""
