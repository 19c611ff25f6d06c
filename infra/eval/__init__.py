"""Retrieval evaluation: BEIR-layout data sets and the standard ranking metrics."""
