"""GANet-Seg kit: a teaching and reproduction kit for the paper "GANet-Seg: Adversarial Learning for
Brain Tumor Segmentation with Hybrid Generative Models".

The library reads as the pipeline, one package per stage; each imports only the stages above it
in this table (`tests/test_layout.py` checks it):

| package       | what it holds                                                                 | notebook   |
|---------------|-------------------------------------------------------------------------------|------------|
| `data/`       | subjects in every layout (`cases`), label conventions, one intensity scale,   | 01         |
|               | the synthetic default data, data in other forms, `ganet validate`             |            |
| `method/`     | the paper: enhancement (Eqs. 13-17) and slice caches, networks, losses        | 02, 03, 04 |
|               | (Eqs. 1-12), the GAN pre-training and the segmentation training               |            |
| `evaluation/` | predictions as NIfTI, post-processing chosen on validation, BraTS metrics     | 04, 06     |
| `studies/`    | the paper's claims tested: the discriminator as a detector and slice position | 04, 05, 06 |
|               | (Table 1), what the adversarial feedback responds to, the seeded ablation     |            |
| `teaching/`   | exercises and their checks, the student edition, grading, the book            | all        |
| `runner/`     | the `ganet` command line, `./run_all.sh`'s notebook runner, checks, report    |            |

Beside them: `viz/` (figures, one file per stage; imports only `data/`), and what every stage
uses: `config` (profiles), `run` (a run folder: its config, data and every artefact's path),
`checkpoint` (saving and safe loading), `files` (atomic writes), `errors`.
A student starts with `method/losses.py`, `method/train_gan.py` and `method/train_seg.py`.
"""

__version__ = "0.1.0"
