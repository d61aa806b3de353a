"""One video, start to finish: weights and hub layout on disk, the sampler's math, the denoise loop,
the pipeline that runs encode → denoise → decode → write, and the mp4 writer.

Importing the package imports nothing (no torch): `layout` and `video_io` are torch-free and used by
the model manager and the desktop; the rest is imported only by the worker and the CLI's `generate`.
"""
