"""Stage 3, evaluation: a trained U-Net's predictions as NIfTI files (`predict`), the post-processing
chosen on validation subjects (`postprocess`), and their scores (`metrics`, `surface`, `evaluate`)
under the BraTS and the paper's slice-wise protocol, beside the paper's numbers (`paper`).
Numpy only, except `predict`. Taught by notebooks 04 and 06.
"""
