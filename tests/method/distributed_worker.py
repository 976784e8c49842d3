"""Run by test_train_seg.py under `torchrun --nproc_per_node N`: validation Dice of a checkpoint,
computed by N processes with Accelerate, written as JSON by the main process."""

import json
import os
import sys

from accelerate import Accelerator
from torch.utils.data import DataLoader

from ganet_lib.data.labels import scheme_for
from ganet_lib.method.networks import load_segmentation
from ganet_lib.method.preprocess import SliceCache
from ganet_lib.method.seg_data import SegSlices
from ganet_lib.method.train_seg import validation_dice


def main(checkpoint: str, image_cache: str, t1_cache: str, ids: str, batch_size: str, out: str) -> None:
    accelerator = Accelerator(cpu=True)
    model, config, _, _ = load_segmentation(checkpoint)
    case_ids = ids.split(",")
    scheme = scheme_for(config.data.labels)
    val_set = SegSlices(SliceCache(image_cache, case_ids), SliceCache(t1_cache, case_ids), scheme)
    model = accelerator.prepare(model)
    loader = accelerator.prepare_data_loader(DataLoader(val_set, batch_size=int(batch_size)))
    scores = validation_dice(model, loader, accelerator, scheme)
    if accelerator.is_main_process:
        with open(out, "w") as handle:
            json.dump({**scores, "processes": accelerator.num_processes, "dataset_slices": len(val_set)}, handle)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the gloo group: left to interpreter exit, a rank can abort (SIGABRT)


if __name__ == "__main__":
    main(*sys.argv[1:])
    # Even with the group destroyed, gloo's C++ threads can still hold tensors at interpreter finalization,
    # and a rank then aborts ("terminate called without an active exception", exit -6; once in a full
    # suite on 2 cores, never in 20 runs alone; pytorch/pytorch#179291 describes the cause). The result is
    # written and every rank has passed the barrier: leave without finalization.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
