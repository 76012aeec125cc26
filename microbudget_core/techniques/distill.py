"""Knowledge distillation: a smaller student learns from the teacher's softened predictions as well as the labels.

Hard labels punish a small model for any doubt; the teacher's soft targets say which wrong answers are
nearly right, a richer signal per example (Hinton et al. 2015). The student is built from the teacher
(fewer layers, a narrower width, a trimmed word table) or is any model id. `alpha` 0 is the hard-label
control: the same student and budget, the teacher unused. Speech models are distilled the Distil-Whisper way
(fewer decoder layers, trained on the teacher's transcripts): see techniques/_distill_speech.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import kinds, runtimes
from ..cache import cached_array
from ..data import Dataset, DatasetSpec, Split, fingerprint, load_dataset
from ..support.errors import MicrobudgetError
from ..models import IMAGE, SPEECH, TEXT, ModelBundle, ModelSpec, load_model
from ..models.anatomy import head_name
from ..models.pooling import mean_pooled, uses_layer_mean
from ..models.variants import LAYER_CHOICES, keep_layers, narrow, pick_layers, trim_vocab
from ..support.progress import Progress, no_progress, scaled
from ..runs import load_run_model, stored_run
from ..runtimes import ORT, PYTORCH
from ..training import MIN_STEPS, TrainConfig, batched_logits, logits_of, split_for_training, train_classifier
from . import _finetune, applies_to
from .finetune_head import frozen_features

ID = "distill"
DESCRIPTION = "Knowledge distillation: a smaller student (fewer layers, narrower, or any model) trained on the teacher's soft predictions"
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share
STUDENTS = ("layers", "narrow", "model")
# A student starts further from a good model than a fine-tuned copy does: text students take twice the baseline
# recipe's rate (MiniLM-L6 -> 2 layers, 4 epochs: 0.795 at 3e-4; at 1.5e-4 it stopped after 2, 0.768 after int8).
RATES = {TEXT: 3e-4, IMAGE: 1e-3}
TEACHER_VERSION = 1  # bump when the way the teacher's outputs are computed changes: old cache entries stop matching
REST = "rest"  # `unlabeled`: the train split beyond the labelled budget
CONTROL, STUDENT = "control (hard labels)", "student (distilled)"  # the two kinds of run, as the lab names them
INITS = ("teacher", "random")
# auto: evenly for text (the top layer of each group), spaced for speech (Distil-Whisper's first and last)
WHICH_LAYERS = ("auto", *LAYER_CHOICES, "spaced")
AUDIO_CONTEXTS = ("clip", "window")  # speech: the encoder reads the clip alone (whisper.cpp's audio_ctx) or 30 s


@dataclass(frozen=True)
class Config:
    student: str = field(default="layers", metadata={"choices": STUDENTS})
    # layers student: how many of the teacher's transformer layers (a Whisper's decoder's) it keeps
    layers: int = field(default=2, metadata={"min": 1})
    which_layers: str = field(default="auto", metadata={"choices": WHICH_LAYERS})
    # narrow student: its channels (MobileNetV2) or hidden size (BERT) as a share of the teacher's
    width: float = field(default=0.5, metadata={"min": 0.1, "max": 1.0})
    init: str = field(default="teacher", metadata={"choices": INITS})  # narrow: the teacher's weights sliced, or random
    student_model: str = ""  # model student: a model id or folder, trained with a fresh head
    # model student: keep this many of its transformer layers (which_layers says which); 0 all
    model_layers: int = field(default=0, metadata={"min": 0})
    trim_vocab: bool = True  # text: keep only the word-table rows of tokens the training texts use
    # softens both softmaxes; higher shows more of the teacher's "dark knowledge"
    temperature: float = field(default=2.0, metadata={"above": 0, "max": 100})
    # weight of the soft-target term, the rest on the labels (speech: on the teacher's transcripts); 0 is the
    # hard-label control (speech: the student trained on the dataset's reference transcripts, the teacher unused)
    alpha: float = field(default=0.5, metadata={"min": 0, "max": 1})
    # layers student of a layer-mean teacher (others ignore it): weight of pulling each kept layer's mean-pooled
    # output towards the teacher's (MSE). MiniLM-L6 -> 2 layers: 0.803 with token-level matching, 0.795 without.
    hidden_weight: float = field(default=1.0, metadata={"min": 0})
    teacher_run: str = ""  # a stored run's model as the teacher; empty: the model this step receives
    # Inputs the student also learns from with the teacher's labels only: "rest" (the train examples beyond the
    # labelled budget, their labels dropped) or a dataset id.
    unlabeled: str = ""
    use_labels: bool = True  # False: the student never sees a human label, only the teacher's predictions
    epochs: int = field(default=3, metadata={"min": 1})
    # 0: 3e-4 for text, 1e-3 for vision (see RATES); a model student: the baseline's
    learning_rate: float = field(default=0.0, metadata={"min": 0, "max": 1})
    # labelled budget: 0 all, else the first k of each class (1,000 by default: minutes on 2 cores, as finetune-full)
    examples_per_class: int = field(default=1000, metadata={"min": 0})
    patience: int = field(default=2, metadata={"min": 1})  # epochs without validation gain before stopping
    seed: int = 0
    # speech: "clip" the student's encoder reads the clip's own frames (in whole seconds) rather than a 30 s window
    audio_context: str = field(default="clip", metadata={"choices": AUDIO_CONTEXTS})

    def __post_init__(self) -> None:
        if self.student == "model" and not self.student_model.strip():  # with the ranges: before any slow work
            raise MicrobudgetError("Setting distill.student_model is empty: a model student needs a model id or "
                                   "folder.", "Set student_model, e.g. minilm-l6.")


# A kind whose student is not a classifier has its own distiller module (check(config, dataset), then
# distill(teacher, ...)), imported when first asked for: Whisper's modeling code is not loaded for text or images.
OWN_DISTILLERS = {SPEECH: "_distill_speech"}


def own_distiller(task: str) -> ModuleType | None:
    """The kind's own distiller module, or None where the classifiers' distillation below serves it."""
    name = OWN_DISTILLERS.get(task)
    return importlib.import_module(f".{name}", __package__) if name else None


@applies_to(ID, (TEXT, IMAGE, SPEECH), (PYTORCH, ORT))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    own = own_distiller(bundle.task)
    if own:
        own.check(config, dataset)
        return own.distill(_teacher(bundle, config), config, dataset, progress)
    _check(config, dataset)
    teacher = _teacher(bundle, config)
    return teach(teacher, lambda texts: _student(teacher, config, texts), config, dataset, progress)


def teach(teacher: ModelBundle, make_student: Callable[[list], tuple[ModelBundle, int]], config: Config,
          dataset: Dataset, progress: Progress = no_progress, freeze_words: bool | None = None) -> ModelBundle:
    """Train the student `make_student(training inputs)` gives (with its word table's size before trimming, 0 if
    untrimmed) on the teacher's soft targets and the labels, as `config` says (pruning's recovery uses it too).

    `freeze_words`: whether a text student's word table stays frozen; None: as the kind of student says."""
    everything, validation = split_for_training(dataset.train, TrainConfig())
    fit = everything.per_class(config.examples_per_class)
    extra = (everything.beyond_per_class(config.examples_per_class).inputs if config.unlabeled.strip() == REST
             else _unlabeled_inputs(config.unlabeled, dataset))
    inputs = fit.inputs + extra
    # The word table keeps the tokens of every training text, labelled or not, so a control with fewer labels
    # still has the student's vocabulary: the same model, only the signal differs.
    student, vocab_before = make_student(everything.inputs + extra)
    taught, features, cached = _teacher_outputs(teacher, inputs + validation.inputs, scaled(progress, 0.0, 0.3))
    soft, teacher_validation = taught[:len(inputs)], taught[len(inputs):]
    teacher_labels = soft.argmax(axis=-1)  # for rows without a (usable) human label
    labels = np.concatenate([fit.labels if config.use_labels else teacher_labels[:len(fit)],
                             teacher_labels[len(fit):]])
    teacher_accuracy = float(np.mean(teacher_validation.argmax(axis=-1) == validation.labels))
    hidden_weight = config.hidden_weight if _matches_layers(teacher, config) else 0.0
    series = CONTROL if config.alpha == 0 and hidden_weight == 0 else STUDENT

    def report(fraction: float, message: str, **metrics: object) -> None:
        extras = {"teacher_accuracy": teacher_accuracy, "series": series} if "epoch" in metrics else {}
        progress(0.3 + 0.7 * fraction, message, **metrics, **extras)

    # A pretrained model student is trained as the baseline recipe trains it (its rate, its word table frozen):
    # its hard-label control is then that model fine-tuned on the labels, and the gap is the teacher's alone.
    pretrained_student = config.student == "model"
    rate = (_finetune.recipe_rate(config, teacher.task) if pretrained_student
            else config.learning_rate or RATES[teacher.task])
    # The word table comes from the teacher (which kept the pretrained one): frozen, as in the baseline recipe.
    freeze = kinds.get(student.task).WORD_EMBEDDINGS and (pretrained_student or (config.student, config.init) in {
        ("layers", "teacher"), ("layers", "random"), ("narrow", "teacher")} if freeze_words is None else freeze_words)
    objective = _objective(soft, features[:len(inputs)] if hidden_weight else None, teacher, config, hidden_weight)
    trained, train_report = train_classifier(
        student, Split(inputs, labels), _finetune.recipe(config, rate, freeze_embeddings=freeze), report,
        min_steps=MIN_STEPS, validation=validation, objective=objective)
    student_params, teacher_params = trained.parameter_count(), teacher.parameter_count()
    epochs = len(train_report.history)
    how = "Hard-label control" if series == CONTROL else (
        f"Distilled (T={config.temperature:g}, alpha={config.alpha:g}"
        + (f", layer outputs matched x{hidden_weight:g}" if hidden_weight else "") + ")")
    note = (f"{how}: student {trained.name} with {student_params / 1e6:.2f}M parameters, teacher {teacher.name} "
            f"with {teacher_params / 1e6:.2f}M; {epochs} epoch{'s' if epochs != 1 else ''} on {len(fit):,} "
            f"{'labelled' if config.use_labels else 'teacher-labelled'} examples"
            + (f" and {len(extra):,} unlabelled ones" if extra else "")
            + f"; teacher's outputs {'from the cache' if cached else 'computed once and cached'}."
            + (f" Word table trimmed from {vocab_before:,} to {trained.model.config.vocab_size:,} tokens."
               if vocab_before else ""))
    details = {"teacher_params": teacher_params, "teacher_val_accuracy": teacher_accuracy,
               "student_params": student_params, "student": trained.name,
               "vocab_before": vocab_before or None, "unlabeled_examples": len(extra), "distill_role": series,
               "examples_per_class": round(len(fit) / len(teacher.labels))}  # labelled ones
    return _finetune.result(trained, trained.model, train_report, note, details=details)


def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
    """A saved speech student whose encoder reads the clip alone: the encoder swapped back in (same weights)."""
    return own_distiller(SPEECH).clip_encoder(model) if meta.get("audio_context") == "clip" else model


def _which_layers(config: Config) -> str:
    return "evenly" if config.which_layers == "auto" else config.which_layers


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """alpha * KL(teacher/T || student/T) * T^2 + (1 - alpha) * cross-entropy(labels).

    T^2 keeps the soft term's gradients at the hard term's scale as T changes (Hinton et al. 2015).
    """
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1), reduction="batchmean", log_target=True)
    return alpha * soft * temperature ** 2 + (1 - alpha) * F.cross_entropy(student_logits, labels)


def softened(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T): the soft targets the student learns from (the page's temperature explainer)."""
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32) / temperature, dim=-1).numpy()


def _check(config: Config, dataset: Dataset | None) -> None:
    text_layers = ("auto", *LAYER_CHOICES)  # "spaced" is Whisper's choice
    _finetune.require(config.which_layers in text_layers, "which_layers", config.which_layers,
                      f"one of {', '.join(text_layers)}")
    if dataset is None or len(dataset.train) == 0:
        raise MicrobudgetError("distill trains on a dataset, and none was given.", "Run it with a dataset.")


def _matches_layers(teacher: ModelBundle, config: Config) -> bool:
    """Whether layer outputs can be matched: the teacher's own layers in the student, and a teacher whose head
    reads every layer's mean (the project's text classifier)."""
    return config.student == "layers" and uses_layer_mean(getattr(teacher.model, "config", None))


def _teacher(bundle: ModelBundle, config: Config) -> ModelBundle:
    """The model this step receives, or a stored run's of the same kind and labels; it must have a trained head."""
    if config.teacher_run:
        run = stored_run(config.teacher_run)
        teacher = load_run_model(run)
        if (teacher.task, teacher.labels) != (bundle.task, bundle.labels):
            kind = kinds.get(bundle.task).DESCRIPTION
            raise MicrobudgetError(f"Teacher run {run.run_id} is a {kinds.get(teacher.task).DESCRIPTION}"
                                   + (f" predicting {teacher.labels}" if teacher.labels else "")
                                   + f"; this step needs a {kind}" + (f" predicting {bundle.labels}." if bundle.labels
                                                                     else "."),
                                   "Pick a teacher trained on this dataset.")
        return teacher
    if not bundle.head_trained:
        raise MicrobudgetError(f"{bundle.name} has no trained head to teach with.", "Train a teacher first.")
    return bundle


def _student(teacher: ModelBundle, config: Config, texts: list) -> tuple[ModelBundle, int]:
    """The untrained student (a new model; the teacher is not touched) and its word table's size before trimming."""
    if config.student != "model" and (teacher.runtime.ID != runtimes.PYTORCH or teacher.meta.get("structure")
                                      or any(p.dtype != torch.float32 for p in teacher.model.parameters())):
        raise MicrobudgetError("A student built from the teacher's weights needs a full-precision PyTorch teacher; "
                               f"{teacher.name} was quantized or exported.",
                               "Put distill before quantization in the pipeline, or pick a student model.")
    if config.student == "layers":
        total = getattr(getattr(teacher.model, "config", None), "num_hidden_layers", 0)
        if not total:
            raise MicrobudgetError(f"A layers student needs a transformer teacher; {teacher.name} has no layers.",
                                   "Use a narrow student for MobileNetV2.")
        student = keep_layers(teacher, pick_layers(total, config.layers, _which_layers(config)))
    elif config.student == "narrow":
        student = narrow(teacher, config.width, from_teacher=config.init == "teacher", seed=config.seed)
    else:
        student = load_model(ModelSpec(config.student_model.strip()), teacher.labels, teacher.task,
                             teacher.meta.get("image_size")).copy()
        if config.model_layers:  # e.g. MiniLM-L6 cut to 3 layers, then taught by mpnet-base
            total = getattr(getattr(student.model, "config", None), "num_hidden_layers", 0)
            student = keep_layers(student, pick_layers(total, config.model_layers, _which_layers(config)))
    if config.trim_vocab and kinds.get(student.task).WORD_EMBEDDINGS:
        return trim_vocab(student, texts)
    return student, 0


def _unlabeled_inputs(dataset_id: str, dataset: Dataset) -> list:
    """The inputs of another dataset of the same kind, labels dropped."""
    if not dataset_id.strip():
        return []
    other = load_dataset(DatasetSpec(dataset_id.strip()))
    if other.modality != dataset.modality:
        raise MicrobudgetError(f"Unlabelled data '{dataset_id}' holds {other.modality}, the task {dataset.modality}.",
                               "Give unlabelled data of the same kind as the task's.")
    return list(other.train.inputs)


def _teacher_outputs(teacher: ModelBundle, inputs: list, progress: Progress) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """The teacher's logits for every input, the features its head reads (None for an exported teacher), and
    whether they came from the cache.

    One pass computes the features, cached on disk (the control and later runs reuse them, and a head-only
    teacher's were cached when its head was trained); the logits are the head applied to them, exactly what the
    whole model gives.
    """
    progress(0.0, f"Teacher {teacher.name}: its view of {len(inputs):,} examples (once)")
    if teacher.runtime.ID != runtimes.PYTORCH:  # an exported graph has no head to stop at
        key = [teacher.name, teacher.runtime.digest(teacher.model), fingerprint(inputs), TEACHER_VERSION]
        logits, cached = cached_array("teacher-logits", teacher.name, key,
                                      lambda: batched_logits(teacher, inputs, progress=progress))
        return logits, None, cached
    head = head_name(teacher.model, len(teacher.labels))
    features, cached = frozen_features(teacher, teacher.model, head, inputs, progress)
    with torch.no_grad():
        logits = teacher.model.get_submodule(head)(torch.from_numpy(features)).numpy()
    return logits, features, cached


def _objective(soft: np.ndarray, features: np.ndarray | None, teacher: ModelBundle, config: Config,
               hidden_weight: float):
    """The training loss per batch: distillation on the teacher's cached logits and, with a `hidden_weight`,
    each kept layer's mean-pooled output pulled towards the teacher's (the vectors its head reads)."""
    teacher_logits = torch.from_numpy(soft)
    targets = None
    if hidden_weight:
        total = teacher.model.config.num_hidden_layers
        states = [0] + [i + 1 for i in pick_layers(total, config.layers, _which_layers(config))]
        targets = torch.from_numpy(features.reshape(len(features), total + 1, -1)[:, states])

    def objective(bundle: ModelBundle, inputs: list, labels: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
        if targets is None:
            logits = logits_of(bundle, inputs)
            return distillation_loss(logits, teacher_logits[positions].to(logits.device), labels,
                                     config.temperature, config.alpha)
        features = bundle.preprocess(inputs)
        output = bundle.model(**features)
        pooled = mean_pooled(output.hidden_states, features["attention_mask"])
        return (distillation_loss(output.logits, teacher_logits[positions].to(pooled.device), labels,
                                  config.temperature, config.alpha)
                + hidden_weight * F.mse_loss(pooled, targets[positions].to(pooled.device)))

    return objective
