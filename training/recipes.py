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
    # Histogram-equalise every face (training and deployment alike): FER2013's val split is contrast-stretched while train
    # is not, and camera exposure varies; equalisation makes the model see one contrast distribution.
    equalize_histogram: bool = False
    # Faces sharper than `max_laplacian_variance` (Laplacian variance at 48x48) get a Gaussian blur of `blur_sigma`, in
    # validation and at run time (fer.preprocess.match_sharpness). The shared FER2013 train split is blurred (Laplacian
    # variance median 6.2, 90th percentile 9.6) while val and camera faces are sharp (median 2,142); sigma 3 reproduces
    # train's sharpness (6.4). Without it val accuracy collapsed to 0.16. 0 turns it off.
    max_laplacian_variance: float = 0.0
    blur_sigma: float = 0.0
    # Probability of erasing one random rectangle (2-20% of the face) per training image (Zhong et al. 2017).
    random_erasing: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    # What the seed notebook did: Adam 1e-5, batch 64, no augmentation, plain cross-entropy.
    "ednn": Recipe(64, 1e-5, "adam", 0.0, 0, False, 0.0, False, 0.0, 1000),
    "edge_xs": Recipe(128, 2e-3, "adamw", 1e-4, 3, True, 0.1, True, 0.5, 25, equalize_histogram=True,
                      max_laplacian_variance=8.0, blur_sigma=3.0),
    "edge_m": Recipe(128, 2e-3, "adamw", 1e-4, 3, True, 0.1, True, 0.5, 25, equalize_histogram=True,
                     max_laplacian_variance=8.0, blur_sigma=3.0),
    # Sharp, equalised train split: AdamW with real decoupled decay, label smoothing, inverse-sqrt class weights (disgust
    # has 436 faces against happy's 7,215) and random erasing on top of the geometric jitter.
    "edge_vgg": Recipe(128, 2e-3, "adamw", 2e-2, 3, True, 0.1, True, 0.5, 1000, equalize_histogram=True,
                       random_erasing=0.5),
}
