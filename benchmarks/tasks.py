"""Tasks the benchmarks map: importable by workers as a module of this folder."""

import time


def trivial(x):
    return x * x


def sleep_half_second(x):
    time.sleep(0.5)
    return x
