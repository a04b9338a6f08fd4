"""Training recipes: the hyper-parameters each architecture is trained with by default."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Recipe:
    batch_size: int
    learning_rate: float
    optimizer: str  # "adam" or "adamw"
    weight_decay: float
    warmup_epochs: int
    cosine: bool  # cosine decay to zero over the run, after warm-up
    label_smoothing: float
    augment: bool
    class_weight_power: float  # 0: none; 0.5: inverse sqrt frequency; 1: inverse frequency
    early_stopping_patience: int
    # Histogram-equalise every face (training, validation and deployment alike): the shared train split is already
    # equalised, val holds original pixels and camera exposure varies; equalising everything gives one distribution.
    equalize_histogram: bool = False
    # Probability of erasing one random rectangle (2-20% of the face) per training image (Zhong et al. 2017).
    random_erasing: float = 0.0
    # Distillation: the training target is teacher_weight x the teacher's probabilities + the rest x the one-hot label
    # (`training.train --teacher-targets`, written by `training.distill`); 0 trains on labels alone.
    teacher_weight: float = 0.0
    # Scales the geometric jitter (rotation, shift, zoom; mirroring is always on when `augment` is): 1 is the full
    # jitter below, 0 mirroring alone. A finishing phase trains on faces close to the ones deployment sees.
    geometric_jitter: float = 1.0
    # Batch mixing, applied to a batch with `mixing_probability` after the augmentations above: "mixup" blends two faces
    # and their targets (Zhang et al. 2018), "cutmix" pastes a rectangle of one face onto another and mixes the targets
    # by its area (Yun et al. 2019). The mixing fraction is drawn from Beta(alpha, alpha); "" (the default) mixes nothing.
    batch_mixing: str = ""
    mixing_alpha: float = 1.0
    mixing_probability: float = 0.5

    def as_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    # What the seed notebook did: Adam 1e-5, batch 64, no augmentation, plain cross-entropy.
    # The shared train split comes histogram-equalised, so val and camera faces are equalised too (one distribution);
    # everything else is the seed's.
    "ednn": Recipe(64, 1e-5, "adam", 0.0, 0, False, 0.0, False, 0.0, 1000, equalize_histogram=True),
    "edge_xs": Recipe(128, 2e-3, "adamw", 1e-4, 3, True, 0.1, True, 0.5, 25, equalize_histogram=True),
    "edge_m": Recipe(128, 2e-3, "adamw", 1e-4, 3, True, 0.1, True, 0.5, 25, equalize_histogram=True),
    # Sharp, equalised train split: AdamW with real decoupled decay, label smoothing, inverse-sqrt class weights (disgust
    # has 436 faces against happy's 7,215) and random erasing on top of the geometric jitter.
    "edge_vgg": Recipe(128, 2e-3, "adamw", 2e-2, 3, True, 0.1, True, 0.5, 1000, equalize_histogram=True,
                       random_erasing=0.5),
    # A second, shorter cosine cycle from a finished edge_vgg run (`--recipe edge_vgg_restart --init-from ...`): one
    # warm-up epoch to a quarter of the first peak, then cosine to zero again.
    "edge_vgg_restart": Recipe(128, 5e-4, "adamw", 2e-2, 1, True, 0.1, True, 0.5, 1000, equalize_histogram=True,
                               random_erasing=0.5),
    # A second cycle as long as the first (`--recipe edge_vgg_cycle2 --init-from ...`): two warm-up epochs to half the
    # first peak, then cosine to zero over the whole run. Short restarts (12-16 epochs) had not paid; session 8 showed
    # that the length of a cycle is what mattered, so this one is as long as the 60-epoch run it starts from.
    "edge_vgg_cycle2": Recipe(128, 1e-3, "adamw", 2e-2, 2, True, 0.1, True, 0.5, 1000, equalize_histogram=True,
                              random_erasing=0.5),
    # A third cycle (session 10), as edge_vgg_cycle2 but with CutMix on half the batches: the second cycle showed this
    # network memorising (train accuracy +6 points, val flat), so the extra epochs get a stronger regulariser.
    "edge_vgg_cycle3_cutmix": Recipe(128, 1e-3, "adamw", 2e-2, 2, True, 0.1, True, 0.5, 1000, equalize_histogram=True,
                                     random_erasing=0.5, batch_mixing="cutmix", mixing_alpha=1.0,
                                     mixing_probability=0.5),
    # Stochastic weight averaging (Izmailov et al. 2018) from a finished model: a constant, low learning rate, one
    # snapshot per epoch, then `python -m training.swa --checkpoints snapshots/*` averages them and recomputes batch norm.
    "edge_vgg_swa": Recipe(128, 1e-4, "adamw", 2e-2, 0, False, 0.1, True, 0.5, 1000, equalize_histogram=True,
                           random_erasing=0.5),
    # A warm restart (as edge_vgg_restart) towards a teacher: the shipped model averaged over 14 test-time views
    # (training/distill.py), mixed 0.7 / 0.3 with the labels. No label smoothing: the teacher's probabilities are soft.
    "edge_vgg_distill": Recipe(128, 5e-4, "adamw", 2e-2, 1, True, 0.0, True, 0.5, 1000, equalize_histogram=True,
                               random_erasing=0.5, teacher_weight=0.7),
    # A long warm restart (as edge_vgg_cycle2) towards an ensemble teacher (session 12): the shipped model and the
    # independent second network (training/reference/edge_vgg_s2029_int8.tflite), each averaged over 14 test-time
    # views (val 0.6877 as a teacher), mixed 0.7 / 0.3 with the labels. Self-distillation (edge_vgg_distill) had not
    # paid; a teacher that two independent networks make is a different signal. Measured over 30 epochs: int8 0.6651 /
    # macro recall 0.6342 for the mean of the last 5, below the shipped model (training/EXPERIMENTS.md).
    "edge_vgg_cycle_kd": Recipe(128, 1e-3, "adamw", 2e-2, 2, True, 0.0, True, 0.5, 1000, equalize_histogram=True,
                                random_erasing=0.5, teacher_weight=0.7),
    # A finishing phase from a finished model (`--init-from`): a low learning rate annealed to zero on faces that look
    # like the ones val and the camera give, i.e. no random erasing and a quarter of the geometric jitter. Heavy
    # augmentation regularises the long phase; its last epochs are spent learning faces deployment never shows.
    "edge_vgg_finish": Recipe(128, 2e-4, "adamw", 2e-2, 1, True, 0.1, True, 0.5, 1000, equalize_histogram=True,
                              random_erasing=0.0, geometric_jitter=0.25),
}

# The wider network trains with edge_vgg's recipe unchanged, so a run of it measures capacity alone.
RECIPES["edge_vgg_wide"] = RECIPES["edge_vgg"]
