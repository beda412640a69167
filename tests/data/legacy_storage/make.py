"""Made storage/ and ids.json with retain 0.1.0 as released before identity baselines
(commit 3e46db7): run from this folder, with that release importable. Kept to show how the
fixture was made; the tests only read what it wrote."""

import json

from retain import get, storage

from legacy_train import Train

with storage("storage"):
    ids = {
        "default": get(Train).commit().id,
        "holdout": get(Train, {"holdout": 0.3}).commit().id,
        "deep": get(Train, {"model.depth": 4}).commit().id,
    }
    get(Train, {"holdout": 0.3}).save_summary(loss=0.5)
with open("ids.json", "w") as handle:
    json.dump(ids, handle, indent=1)
    handle.write("\n")
