"""Components: run once, find the result again, sweep in a process pool.

Run it twice from any directory: the second time everything is cached.

    python examples/estimate_pi.py
"""

from __future__ import annotations

import random

import retain
from retain import Component, get


class EstimatePi(Component):
    """Estimate pi from random points in the unit square."""

    Config = {"samples": 100}

    def __call__(self) -> None:
        rng = random.Random(self.seed)  # the seed derives from the identity: reproducible
        samples = self.config.samples
        inside = sum(rng.random() ** 2 + rng.random() ** 2 < 1 for _ in range(samples))
        print(f"{self.nickname}: {inside} of {samples} points inside")  # goes to output.log too
        self.save_file("result.json", {"pi": 4 * inside / samples})

    def summary(self) -> float:
        return float(self.load_file("result.json")["pi"])


if __name__ == "__main__":  # the pool's processes import this file: launch only from here
    exp = get(EstimatePi, {"samples": 150})
    exp.launch()  # commits, runs __call__ once; launching again does nothing
    print(f"{exp!r} {exp.nickname}: pi ~ {exp.summary()}, cached: {exp.cached()}")

    with get("retain.execution.pool", {"processes": 2}):  # each in a fresh process
        for n in (100, 1000, 10000):
            get(EstimatePi, {"samples": n}).launch()  # queued; dispatched at the end of the block
    for n in (100, 1000, 10000):
        print(f"samples={n}: pi ~ {get(EstimatePi, {'samples': n}).summary()}")
    print(retain.status(EstimatePi))
