"""Stage 1, the data: finding, reading and checking subjects in every layout (BraTS, NFBS), label
maps in every numbering, one intensity scale for every storage, and the synthetic subjects the
kit runs on by default. Taught by notebook 01. Imports nothing from the later stages.
"""
