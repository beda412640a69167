"""The quickstart: commit an interface, find it again by its configuration, keep files with it.

Run it twice: the first run creates and commits, the second finds what the first committed.
Results go to ./storage (or $RETAIN_STORAGE).
"""

from __future__ import annotations

from retain import Interface, get


class MnistData(Interface):
    """A dataset of handwritten characters"""

    Config = {"batch_size": 8, "name": "mnist"}

    def version_large(self, factor: float = 2) -> dict[str, int]:
        return {"batch_size": int(self.config.batch_size * factor)}


def main() -> None:
    mnist = get(MnistData, {"batch_size": 8})
    if mnist.is_committed():
        print(f"reloaded {mnist}, committed {mnist.created}")
    else:
        print(f"new {mnist}, committing to {mnist.local_directory()}")
        mnist.save_file("prediction.txt", "a string")
        mnist.save_file("settings.json", {"neurons": [1, 2]})
        mnist.commit()

    assert get(MnistData, {"batch_size": 8}) == mnist
    assert Interface.from_directory(mnist.local_directory()) == mnist
    print(f"reloaded by configuration and by directory: {mnist.load_file('settings.json')}")

    large = get(MnistData, "~large(3)")
    print(f"{large} has batch_size {large.config.batch_size}; committed: {large.is_committed()}")

    try:
        import numpy as np
    except ImportError:
        return
    # Committed: replacing one of its files must say so (the second run replaces this one).
    mnist.save_file("inputs.npy", np.array([1.0, 2.0]), overwrite=True)
    print(f"inputs.npy: {mnist.load_file('inputs.npy')}")


if __name__ == "__main__":
    main()
