"""Base of the notebook explorers: showing the object in a notebook shows its `.widget` box."""


class Shown:
    """Mixin: showing the object in a notebook shows `.widget`."""
    widget = None

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)
