"""Metric and tag keys shared by the harness, tracking and reports (re-exported by ``bench.tracking``).

Evaluation metrics computed on an extractor's features are keyed ``eval/<extractor>/<metric>`` so that
numbers from different extractors never mix.
"""

from __future__ import annotations

# training curves (logged every train.log_every generator steps, mean over the window)
D_LOSS = "train/d_loss"
G_LOSS = "train/g_loss"
TRAIN_FID = "train/fid"  # FID on eval.during_training_samples samples with eval.extractor
TRAIN_D_ACC_REAL = "train/d_acc_real"  # D accuracy on as many reference images, during training
TRAIN_D_ACC_FAKE = "train/d_acc_fake"

# end-of-run evaluation
FID, IS_MEAN, IS_STD, KID_MEAN, KID_STD = "fid", "is_mean", "is_std", "kid_mean", "kid_std"
PRECISION, RECALL = "precision", "recall"
DENSITY, COVERAGE = "density", "coverage"  # Naeem et al. 2020, on the precision/recall features
COPY_RATE, NN_RATIO, NN_DISTANCE = "copy_rate", "nn_ratio", "nn_distance"  # bench.metrics.memorisation
HELDOUT_COPY_RATE = "heldout_copy_rate"  # the copy rate of held-out real images: a model that does not copy
MODES, CLASS_KL = "modes", "class_kl"  # mode coverage by the dataset's classifier (bench.metrics.coverage)
CLASS_SHARE = "class_share"  # + "/<c>": share of the samples the dataset's classifier puts in class c
INTRA_FID = "intra_fid"  # conditional runs: mean over classes of the class's FID (Miyato & Koyama 2018)
CAS = "eval/cas/accuracy"  # conditional runs: classifier trained on samples, tested on real (Ravuri & Vinyals 2019)
CAS_REAL = "eval/cas/real_accuracy"  # the same classifier and budget trained on as many real images: the ceiling
D_ACC_REAL = "eval/d_acc_real"
D_ACC_FAKE = "eval/d_acc_fake"
D_ACC = "eval/d_acc"
D_ROC_AUC = "eval/d_roc_auc"

# timing
MS_PER_STEP_P50 = "time/ms_per_step_p50"
MS_PER_STEP_P95 = "time/ms_per_step_p95"
MS_PER_STEP_MEAN = "time/ms_per_step_mean"
IMG_PER_S = "time/img_per_s"
PEAK_MEM_MB = "time/peak_mem_mb"
TRAIN_S = "time/train_s"
SPEEDUP = "time/speedup_vs_baseline"  # ganbench bench speed: baseline ms/step p50 over the row's
G_STEPS = "train/g_steps"
EPOCHS = "train/epochs_done"

# tags
TAG_ARCH = "ganbench.arch"
TAG_SEED = "ganbench.seed"
TAG_DEVICE = "ganbench.device"
TAG_VERSION = "ganbench.version"
TAG_GIT = "ganbench.git_commit"
TAG_TORCH = "ganbench.torch"
TAG_CUDA = "ganbench.cuda"
TAG_FAILURE = "ganbench.failure"
TAG_PEAK_MEM_KIND = "ganbench.peak_mem_kind"
TAG_PROTOCOL = "ganbench.protocol."  # + extractor: the protocol line of that extractor's numbers
TAG_UNAVAILABLE = "ganbench.unavailable."  # + extractor: why it was not computed
TAG_KIND = "ganbench.kind"  # "run" (a trained GAN), "real-floor" (real train images as samples) or "external"
TAG_SELECTION = "ganbench.checkpoint_selection"
TAG_CLASSES = "ganbench.classes"  # the dataset's class names as a JSON list (datasets of at most 62 classes)
TAG_SPEED_PATH = "ganbench.speed_path"  # ganbench bench speed: "baseline", "ganbench", "ganbench bf16", ...
TAG_SPEED_SESSION = "ganbench.speed_session"  # one id per ganbench bench speed invocation
BEST_STEP = "selection/best_step"
BEST_TRAIN_FID = "selection/best_train_fid"
KIND_RUN, KIND_FLOOR = "run", "real-floor"
KIND_EXTERNAL = "external"  # a model trained elsewhere, scored from its samples or generator (bench.external)
RANKED_KINDS = (KIND_RUN, KIND_EXTERNAL)  # the rows a table ranks (the floor is a reference, never ranked)
TAG_EXTERNAL = "ganbench.external"  # an external run's source: "samples <kind> <path>" or "generator <spec>"
TAG_EXTERNAL_SHA256 = "ganbench.external_sha256"  # sha256 of its samples file / folder or generator


def augment_key(k: int, what: str) -> str:
    """``augment_key(10, "gain") == "eval/augment/k10/gain"``; ``what``: ``real``, ``augmented``, ``gain``
    (the mean over seeds) or one of them + ``_std`` (the sample std over seeds)."""
    return f"eval/augment/k{k}/{what}"


def eval_key(extractor: str, metric: str) -> str:
    """``eval_key("lenet-mnist", FID) == "eval/lenet-mnist/fid"``."""
    return f"eval/{extractor}/{metric}"
