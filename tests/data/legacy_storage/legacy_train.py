from retain import Interface


class Train(Interface):
    Config = {"a": 1, "holdout": 0.2, "model": {"depth": 2, "width": 8}}
