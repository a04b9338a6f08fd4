"""Train a FER2013 model: `python -m training.train --arch edge_xs --data ../shared/datasets/fer2013 --epochs 60`.

Resumable (`--resume` continues from the last finished epoch, optimizer state included), seeded, with the best
validation checkpoint, the per-epoch history (CSV) and the run's config written under `--out` (default runs/<arch>).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer.labels import LABELS  # noqa: E402
from training.data import Dataset, equalize_histograms, load_split  # noqa: E402
from training.distill import load_teacher_targets  # noqa: E402
from training.models import ARCHITECTURES, Architecture, get_architecture  # noqa: E402
from training.recipes import RECIPES, Recipe  # noqa: E402
from training.recover import recover_model  # noqa: E402
from training.swa import RecalibratedValidation  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("FER_DATA_DIR", "../shared/datasets/fer2013"))


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-class loss weights proportional to frequency**-power, normalised to mean 1 over the samples."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights /= (weights[labels]).mean()
    return weights.astype(np.float32)


def augmenter(seed: int, photometric: bool = True, geometric_jitter: float = 1.0) -> keras.Sequential:
    """Geometric jitter that face detection in a therapy room plausibly produces (scaled by `geometric_jitter`; 0 leaves
    mirroring alone), and (for models that do not equalise histograms) photometric jitter. After equalisation
    brightness/contrast changes are undone at run time, so training on them would only teach the model inputs it never
    sees."""
    steps = [keras.layers.RandomFlip("horizontal", seed=seed)]
    if geometric_jitter > 0:
        j = geometric_jitter
        steps += [
            keras.layers.RandomRotation(0.04 * j, fill_mode="nearest", seed=seed),  # about +-15 degrees at 1
            keras.layers.RandomTranslation(0.1 * j, 0.1 * j, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom((-0.15 * j, 0.1 * j), fill_mode="nearest", seed=seed),
        ]
    if photometric:
        steps += [keras.layers.RandomContrast(0.3, seed=seed),
                  keras.layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed)]
    return keras.Sequential(steps, name="augment")


def random_erasing(images: tf.Tensor, probability: float, fill: float = 127.5) -> tf.Tensor:
    """Erase one random rectangle (2-20% of the area, aspect 0.3-3.3) in each image with `probability` (Zhong et al.,
    "Random Erasing Data Augmentation", AAAI 2020): the model learns to read a face with a hand or glasses in the way."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    area = tf.random.uniform([batch], 0.02, 0.2) * tf.cast(height * width, tf.float32)
    aspect = tf.exp(tf.random.uniform([batch], np.log(0.3), np.log(3.3)))
    erase_h = tf.clip_by_value(tf.sqrt(area * aspect), 1.0, tf.cast(height, tf.float32))
    erase_w = tf.clip_by_value(tf.sqrt(area / aspect), 1.0, tf.cast(width, tf.float32))
    top = tf.random.uniform([batch]) * (tf.cast(height, tf.float32) - erase_h)
    left = tf.random.uniform([batch]) * (tf.cast(width, tf.float32) - erase_w)
    rows = tf.cast(tf.range(height), tf.float32)[None, :, None]
    cols = tf.cast(tf.range(width), tf.float32)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + erase_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + erase_w)[:, None, None]))
    chosen = tf.random.uniform([batch]) < probability
    mask = (inside & chosen[:, None, None])[..., None]
    return tf.where(mask, tf.cast(fill, images.dtype), images)


def mix_batch(images: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor, method: str, alpha: float,
              probability: float) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Mix each face of a batch with another face of the same batch (a random pairing), with `probability` per batch.

    "mixup" blends the two images; "cutmix" pastes one rectangle of the partner face onto the face, its area the
    partner's share. Targets and sample weights (the class weights) are mixed in the same proportion, so the loss
    still sums to the label mass of the two faces and a rare class keeps its weight when it is pasted in."""
    if method not in ("mixup", "cutmix"):
        raise ValueError(f"batch mixing must be 'mixup' or 'cutmix', not {method!r}")
    batch = tf.shape(images)[0]
    partner = tf.random.shuffle(tf.range(batch))
    # Beta(a, a) as the ratio of two Gamma(a) draws: tf has no Beta sampler of its own.
    gamma_a, gamma_b = tf.random.gamma([], alpha), tf.random.gamma([], alpha)
    share = gamma_a / (gamma_a + gamma_b)  # of the face itself
    if method == "mixup":
        mixed = share * images + (1 - share) * tf.gather(images, partner)
    else:
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        cut_h = tf.cast(tf.round(tf.cast(height, tf.float32) * tf.sqrt(1 - share)), tf.int32)
        cut_w = tf.cast(tf.round(tf.cast(width, tf.float32) * tf.sqrt(1 - share)), tf.int32)
        top = tf.random.uniform([], 0, height - cut_h + 1, dtype=tf.int32)
        left = tf.random.uniform([], 0, width - cut_w + 1, dtype=tf.int32)
        rows, cols = tf.range(height)[:, None], tf.range(width)[None, :]
        inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
        mixed = tf.where(inside[None, :, :, None], tf.gather(images, partner), images)
        # The share actually kept, after rounding the rectangle to whole pixels.
        share = 1 - tf.cast(cut_h * cut_w, tf.float32) / tf.cast(height * width, tf.float32)
    mixed_targets = share * targets + (1 - share) * tf.gather(targets, partner)
    mixed_weights = share * weights + (1 - share) * tf.gather(weights, partner)
    apply = tf.random.uniform([]) < probability
    return (tf.where(apply, mixed, images), tf.where(apply, mixed_targets, targets),
            tf.where(apply, mixed_weights, weights))


def training_targets(labels: np.ndarray, teacher: np.ndarray | None, teacher_weight: float) -> np.ndarray:
    """One-hot labels, or (distillation, Hinton et al. 2015) their mix with a teacher's probabilities for each face."""
    onehot = keras.utils.to_categorical(labels, len(LABELS)).astype(np.float32)
    if teacher is None or teacher_weight == 0:
        return onehot
    return (teacher_weight * teacher + (1 - teacher_weight) * onehot).astype(np.float32)


def make_dataset(data: Dataset, arch: Architecture, recipe: Recipe, training: bool, seed: int,
                 teacher: np.ndarray | None = None) -> tf.data.Dataset:
    images = data.images[..., None].astype(np.float32)
    targets = training_targets(data.labels, teacher if training else None, recipe.teacher_weight)
    weights = class_weights(data.labels, recipe.class_weight_power)[data.labels] if training else np.ones(len(data), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, targets, weights))
    if training:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(recipe.batch_size)
    norm = arch.normalization
    aug = (augmenter(seed, photometric=not recipe.equalize_histogram, geometric_jitter=recipe.geometric_jitter)
           if training and recipe.augment else None)

    def prepare(x, y, w):
        if aug is not None:
            x = tf.clip_by_value(aug(x, training=True), 0.0, 255.0)
        if training and recipe.random_erasing > 0:
            x = random_erasing(x, recipe.random_erasing)
        if training and recipe.batch_mixing:
            x, y, w = mix_batch(x, y, w, recipe.batch_mixing, recipe.mixing_alpha, recipe.mixing_probability)
        return x * norm.scale + norm.offset, y, w

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def epochs_logged(history_csv: Path) -> int:
    """How many epochs an earlier part of this run finished (0 for a fresh run)."""
    if not history_csv.exists():
        return 0
    with history_csv.open() as handle:
        return sum(1 for _ in csv.DictReader(handle))


def best_so_far(history_csv: Path, metric: str = "val_accuracy") -> float | None:
    """The best value of `metric` an earlier part of this run logged, or None for a fresh run."""
    if not history_csv.exists():
        return None
    with history_csv.open() as handle:
        values = [float(row[metric]) for row in csv.DictReader(handle) if row.get(metric)]
    return max(values) if values else None


def learning_rate_at(epoch: int, recipe: Recipe, total_epochs: int) -> float:
    if epoch < recipe.warmup_epochs:
        return recipe.learning_rate * (epoch + 1) / recipe.warmup_epochs
    if not recipe.cosine:
        return recipe.learning_rate
    progress = (epoch - recipe.warmup_epochs) / max(1, total_epochs - recipe.warmup_epochs)
    return recipe.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(recipe: Recipe) -> keras.optimizers.Optimizer:
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=recipe.learning_rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=recipe.learning_rate)


CALIBRATION_FACES = 4096
# Clean train faces for the per-epoch batch-norm recalibration (RecalibratedValidation): about 15 s an epoch here.
RECALIBRATION_FACES = 4096


def load_initial_weights(model: keras.Model, source: Path, train_data: Dataset, arch: Architecture) -> None:
    """A finished run's weights: its .keras checkpoint, or a committed float32 .tflite export (see training/recover.py).

    The recovered batch norms take their statistics from the calibration faces, so those are drawn across the whole
    split: the folder loader returns faces class by class, and the first 4,096 were all angry (or disgusted). Fitted to
    them, the statistics were an angry face's, and recalibrating on typical faces turned val 0.652 into 0.531."""
    if source.suffix == ".tflite":
        chosen = np.random.default_rng(0).permutation(len(train_data))[:CALIBRATION_FACES]
        faces = train_data.images[chosen, ..., None].astype(np.float32)
        recover_model(model, source, faces * arch.normalization.scale + arch.normalization.offset)
    else:
        model.set_weights(keras.models.load_model(source, compile=False).get_weights())


def train(arch_name: str, data_dir: Path, epochs: int, out_dir: Path, resume: bool, seed: int,
          batch_size: int | None = None, limit: int | None = None, recipe_name: str | None = None,
          init_from: Path | None = None, teacher_targets: Path | None = None) -> dict:
    arch = get_architecture(arch_name)
    recipe = RECIPES[recipe_name or arch_name]
    if batch_size:
        recipe = Recipe(**{**recipe.as_dict(), "batch_size": batch_size})
    # Each resumed part of a run draws its shuffles and augmentations from a seed of its own: with the run's seed alone
    # every restart replayed the first epoch's exact images (same order, same jitter), and three restarts in a row let
    # the network memorise them (train accuracy +10 points, val -4, measured here).
    finished_epochs = epochs_logged(out_dir / "history.csv") if resume else 0
    part_seed = seed + 1000 * finished_epochs
    keras.utils.set_random_seed(part_seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = out_dir / "backup"
    if not resume and (out_dir / "config.json").exists():
        raise SystemExit(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")

    train_data, val_data = load_split(data_dir, "train"), load_split(data_dir, "val")
    if limit:
        train_data = Dataset(train_data.images[:limit], train_data.labels[:limit])
    if recipe.equalize_histogram:
        train_data = Dataset(equalize_histograms(train_data.images), train_data.labels)
        val_data = Dataset(equalize_histograms(val_data.images), val_data.labels)
    print(f"train {len(train_data)} images {train_data.class_counts()}", flush=True)
    print(f"val   {len(val_data)} images", flush=True)
    if (teacher_targets is None) != (recipe.teacher_weight == 0):
        raise SystemExit(f"recipe {recipe_name or arch_name!r} has teacher_weight {recipe.teacher_weight}: "
                         + ("pass --teacher-targets (see training/distill.py)" if teacher_targets is None
                            else "it takes no --teacher-targets"))
    teacher = load_teacher_targets(teacher_targets, train_data) if teacher_targets is not None else None

    model = arch.build()
    if init_from is not None and finished_epochs == 0:
        # A warm restart (Loshchilov & Hutter, SGDR): a new schedule from a finished run's weights. A resumed part
        # restores its own backup instead, so the starting weights are only ever loaded once.
        load_initial_weights(model, init_from, train_data, arch)
        # Kept in the run, so the starting model can join a weight soup with the cycle's end (training.swa) even
        # when it was recovered from a .tflite export.
        model.save(out_dir / "init.keras")
        print(f"initialised from {init_from} (saved as {out_dir / 'init.keras'})", flush=True)
    model.compile(
        optimizer=build_optimizer(recipe),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    config = {"arch": arch_name, "epochs": epochs, "seed": seed, "data": str(data_dir), "recipe": recipe.as_dict(),
              "recipe_name": recipe_name or arch_name, "init_from": str(init_from) if init_from else None,
              "teacher_targets": str(teacher_targets) if teacher_targets else None,
              "normalization": {"scale": arch.normalization.scale, "offset": arch.normalization.offset,
                                "equalize_histogram": recipe.equalize_histogram},
              "params": model.count_params(), "train_size": len(train_data)}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))

    def normalised(images: np.ndarray) -> np.ndarray:  # already equalised above, where the recipe asks
        return images[..., None].astype(np.float32) * arch.normalization.scale + arch.normalization.offset

    calibration = np.random.default_rng(seed).permutation(len(train_data))[:RECALIBRATION_FACES]
    callbacks = [
        # First: it adds val_accuracy_recalibrated to the logs the callbacks after it write and select on.
        RecalibratedValidation(arch.build, normalised(train_data.images[calibration]), normalised(val_data.images),
                               val_data.labels, out_dir / "best_recalibrated.keras",
                               best_so_far(out_dir / "history.csv", "val_accuracy_recalibrated") if resume else None),
        # Kept after a finished run too, so `--resume --epochs <more>` extends it instead of starting over.
        keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False),
        # A resumed run must not overwrite best.keras with a worse epoch: start from the best val accuracy so far.
        keras.callbacks.ModelCheckpoint(str(out_dir / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True,
                                        initial_value_threshold=best_so_far(out_dir / "history.csv") if resume else None),
        # Every epoch's weights, for weight averaging afterwards (training/swa.py); out of git like the rest of runs/.
        keras.callbacks.ModelCheckpoint(str(out_dir / "snapshots" / "epoch_{epoch:03d}.keras")),
        keras.callbacks.CSVLogger(str(out_dir / "history.csv"), append=resume),
        keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate_at(epoch, recipe, epochs)),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=recipe.early_stopping_patience,
                                      restore_best_weights=False),
    ]
    history = model.fit(
        make_dataset(train_data, arch, recipe, training=True, seed=part_seed, teacher=teacher),
        validation_data=make_dataset(val_data, arch, recipe, training=False, seed=part_seed),
        epochs=epochs,
        callbacks=callbacks,
        verbose=2,
    )
    model.save(out_dir / "last.keras")
    best = max(history.history.get("val_accuracy", [0.0]) or [0.0])
    summary = {"best_val_accuracy_this_run": float(best), "epochs_run": len(history.history.get("loss", []))}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER2013 folder root or Kaggle CSV")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", type=Path, help="run directory (default runs/<arch>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--limit", type=int, help="use only the first N training images (smoke runs)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), help="hyper-parameters (default: the architecture's own)")
    parser.add_argument("--init-from", type=Path, help="start from these weights (a warm restart): a .keras checkpoint or a float32 .tflite export")
    parser.add_argument("--teacher-targets", type=Path,
                        help="a teacher's probabilities for every train face (training.distill), for a distillation recipe")
    args = parser.parse_args(argv)
    summary = train(args.arch, args.data, args.epochs, args.out or Path("runs") / args.arch, args.resume, args.seed,
                    args.batch_size, args.limit, args.recipe, args.init_from, args.teacher_targets)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
