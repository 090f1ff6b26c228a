"""Sealroom's models: the catalogue, provisioning of the defaults, the embedder and the LLM worker."""
