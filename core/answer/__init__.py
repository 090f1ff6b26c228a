"""From a question to a cited answer: retrieval, evidence, prompts, verification, the pipeline, evaluation."""
