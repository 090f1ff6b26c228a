"""Sealroom's engine: folders, parsing, the catalog, retrieval and answers. No Qt here."""
