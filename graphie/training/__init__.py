"""Training and evaluation of :class:`graphie.models.GraphieModel` on the benchmarks."""
