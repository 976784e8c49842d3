"""Stage 4, the paper's claims tested: the discriminator as a tumour-slice detector and what slice
position explains of it (`detector`, `position`; Table 1, notebook 05), what the adversarial
feedback responds to (`feedback`, notebook 04) and the seeded ablation (`ablation`, notebook 06).
"""
