"""GANet-Seg kit: data, enhancement, models, training, metrics and figures for the paper
"GANet-Seg: Adversarial Learning for Brain Tumor Segmentation with Hybrid Generative Models".

The pipeline, one module per stage:
    data / synthetic -> enhance -> preprocess -> (models, losses, training) -> metrics -> viz
`config` and `run` belong to the edges (the `ganet` command line in `cli`, and the notebooks).
"""

__version__ = "0.1.0"
