"""The local web dashboard (``runstream ui``) and the HTML report share these files."""

__all__ = ()
