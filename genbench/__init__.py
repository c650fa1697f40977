"""genbench: quality metrics as judges of a text-to-image model (ATTIQA §5.1, supplement §D.1–D.2).

``genbench run`` makes image pairs (two seeds per prompt), ``genbench score`` scores every image with the
project's scorers, ``genbench vote`` serves the preference study, ``genbench agree`` measures how often each
metric picks the image people preferred. genbench uses attiqa; attiqa never imports genbench.
"""

__all__: list[str] = []
