"""Stage 2, the method: what the paper contributes, in reading order. `enhance` (Eqs. 13-17) and
`preprocess` (the slice caches it is applied in), `models` (generator, PatchGAN, U-Net), `losses`
(Eqs. 1-12), `train_gan` (pre-training on normal brains) and `train_seg` (the U-Net with the
adversarial feedback). Taught by notebooks 02-04; start with `losses` and the two trainers.
"""
