"""Figures, one file per stage (common, data, gan, segmentation, detector, evaluation): arrays and
parameters in, a matplotlib Figure out; the notebooks, their widgets and the tests call the same
functions. Slices are 2D arrays in display orientation (`data.cases.axial_slices`). viz imports only
the data stage, so every later stage may draw; `from ganet_lib import viz` gives `viz.<name>`.
"""

from ganet_lib.viz.common import (
    LABEL_COLOURS,
    MODALITY_TITLES,
    _bare,
    label_legend,
    overlay_labels,
    plot_panels,
    save_figure,
)
from ganet_lib.viz.data import (
    plot_brain_box,
    plot_cache_samples,
    plot_empty_slices,
    plot_enhancement_steps,
    plot_modalities,
    plot_nfbs_orientation,
    plot_regions,
    plot_transfer_curves,
    plot_volume_distribution,
    render_enhancement,
)
from ganet_lib.viz.detector import (
    plot_detector_rocs,
    plot_domain_shift,
    plot_roc,
    plot_score_histogram,
    plot_slice_position,
    render_sweep_slice,
)
from ganet_lib.viz.evaluation import (
    ERROR_COLOURS,
    plot_ablation,
    plot_lesion_matching,
    plot_metric_distributions,
    plot_postprocessing,
    render_case_errors,
)
from ganet_lib.viz.gan import (
    plot_discriminator_maps,
    plot_gan_history,
    plot_inpainting,
    plot_normal_positions,
)
from ganet_lib.viz.segmentation import (
    plot_architecture,
    plot_feedback_response,
    plot_feedback_views,
    plot_in_the_loop,
    plot_seg_history,
)

__all__ = [
    "_bare",
    "ERROR_COLOURS",
    "LABEL_COLOURS",
    "label_legend",
    "MODALITY_TITLES",
    "overlay_labels",
    "plot_ablation",
    "plot_architecture",
    "plot_brain_box",
    "plot_cache_samples",
    "plot_detector_rocs",
    "plot_discriminator_maps",
    "plot_domain_shift",
    "plot_empty_slices",
    "plot_enhancement_steps",
    "plot_feedback_response",
    "plot_feedback_views",
    "plot_in_the_loop",
    "plot_gan_history",
    "plot_inpainting",
    "plot_lesion_matching",
    "plot_metric_distributions",
    "plot_modalities",
    "plot_nfbs_orientation",
    "plot_normal_positions",
    "plot_panels",
    "plot_postprocessing",
    "plot_regions",
    "plot_roc",
    "plot_score_histogram",
    "plot_seg_history",
    "plot_slice_position",
    "plot_transfer_curves",
    "plot_volume_distribution",
    "render_case_errors",
    "render_enhancement",
    "render_sweep_slice",
    "save_figure",
]
