"""From watched folders to passages: scanning, watching, parsing in guarded processes, chunking, indexing."""
