"""Model Garden operator: the InferenceModel CRD, its manifest builders, Kopf handlers and kubectl plugin."""
