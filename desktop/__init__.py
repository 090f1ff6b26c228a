"""The PySide6 desktop app (issue 3). Qt is imported only inside this package."""
