"""The PySide6 desktop app (issue 3). Qt is imported only inside this package."""

from sealroom.desktop import binding as _binding  # noqa: F401  # before anything imports more modules
