"""Distil-Whisper on a CPU budget: a Whisper student trained on its teacher's transcripts and token distributions.

The student keeps an encoder (the teacher's, or a smaller Whisper's) frozen and trains its decoder, teacher-forced
on the teacher's greedy transcripts (pseudo-labels, Gandhi et al. 2023) with a KL term on the teacher's top-k token
distributions. With audio_context "clip" its encoder reads only the clip's own frames rather than a 30 s window of
mostly padding (whisper.cpp's audio_ctx); the decoder learns the shorter encoder output during distillation.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .. import devices
from ..cache import cached_array
from ..data import Dataset, Split
from ..data.audio import SAMPLE_RATE
from ..support.errors import MicrobudgetError
from ..kinds.speech_recognition import error_rate
from ..models import ModelSpec, load_model
from ..models.bundle import SPEECH, ModelBundle
from ..models.speech import HOP, MAX_NEW_TOKENS, WINDOW_SECONDS, generate, transcribe
from ..models.variants import pick_layers
from ..support.progress import Progress, scaled
from ..runtimes import PYTORCH

TAIL = 50  # encoder positions at the end of a 30 s window that a clip student appends (see ClipEncoder)
CLIP_FRAMES = 100  # clip features are padded up to whole seconds: few distinct lengths, so batches share one
TOP_K = 64  # the teacher's distribution kept per token: all 51,865 probabilities of every token would not fit on disk
RATE = 1e-4  # AdamW's rate when learning_rate is 0
BATCH = 8
# A clip student's encoder learns the teacher's window states for its frames (a regression): 4 epochs at RATE reached
# MSE 0.024 where 10 at 3e-4 reached 0.031 (tiny.en, 288 flite clips).
ENCODER_EPOCHS = 4
VALIDATION = 32  # train clips held out to pick the best epoch
TEACHER_VERSION = 2  # bump when the teacher's cached outputs are computed differently
STUDENTS = ("layers", "model")
# Text and vision settings with no meaning for a Whisper student: changing one is refused rather than ignored.
CLASSIFIER_ONLY = ("width", "init", "trim_vocab", "hidden_weight", "unlabeled", "use_labels", "examples_per_class")


class ClipEncoder(transformers.models.whisper.modeling_whisper.WhisperEncoder):
    """Whisper's encoder on any number of frames up to 30 s (the positional table cut to the input's length), its
    states followed by `tail`: the states the teacher's encoder gives the last TAIL positions of a 30 s window.

    The decoder was trained on 30 s windows and looks at their last positions to know where the audio ends: without
    them it repeats itself (tiny.en on the recorded clips: WER 409% on the clip's states alone, 5.5% with the
    window's own last 50 states after them, 7.7% on the whole window). Those states barely depend on the clip, so
    one fixed tail (their mean over the training clips) serves every input.
    """

    def forward(self, input_features: torch.Tensor, *args: Any, with_tail: bool = True,
                **kwargs: Any) -> BaseModelOutput:
        if input_features.shape[-1] > 2 * self.embed_positions.num_embeddings:
            raise MicrobudgetError(f"The encoder reads at most {WINDOW_SECONDS} s, not "
                                   f"{input_features.shape[-1] // 100} s.", "Cut the audio into 30 s windows.")
        hidden = F.gelu(self.conv2(F.gelu(self.conv1(input_features)))).permute(0, 2, 1)
        hidden = hidden + self.embed_positions.weight[:hidden.shape[1]]
        for layer in self.layers:
            hidden = layer(hidden, None, layer_head_mask=None)[0]
        hidden = self.layer_norm(hidden)
        if with_tail:
            hidden = torch.cat([hidden, self.tail.expand(len(hidden), -1, -1).to(hidden.dtype)], dim=1)
        return BaseModelOutput(last_hidden_state=hidden)


def clip_encoder(model: nn.Module) -> nn.Module:
    """The model with its encoder reading clip-length inputs (same weights, a tail to fill): also how load_saved
    rebuilds it before the saved weights, the tail included, fill it."""
    encoder = model.model.encoder
    encoder.__class__ = ClipEncoder
    if not hasattr(encoder, "tail"):
        encoder.register_buffer("tail", torch.zeros(TAIL, model.config.d_model))
    return model


def decoder_layers(total: int, keep: int, how: str) -> list[int]:
    """Which decoder layers a student keeps: `spaced` (or `auto`) the first and the last and evenly between, as
    Distil-Whisper does (2 of 4: [0, 3]); otherwise models.variants.pick_layers."""
    if how not in ("auto", "spaced"):
        return pick_layers(total, keep, how)
    pick_layers(total, keep, "first")  # the range check and its message
    return [total - 1] if keep == 1 else [round(i * (total - 1) / (keep - 1)) for i in range(keep)]


def cut_decoder(bundle: ModelBundle, layers: list[int]) -> ModelBundle:
    """A copy of a Whisper keeping its encoder and only the decoder layers at `layers`, with their weights."""
    model = copy.deepcopy(bundle.model)  # its config too: the teacher's is left as it is
    decoder = model.model.decoder
    decoder.layers = nn.ModuleList(decoder.layers[i] for i in layers)
    for index, layer in enumerate(decoder.layers):  # the key/value cache is indexed by position in the stack
        layer.self_attn.layer_idx = layer.encoder_attn.layer_idx = index
    model.config.decoder_layers = len(layers)
    return replace(bundle, model=model.eval(), meta=dict(bundle.meta), name=f"{bundle.name} decoder {layers}")


def distill(teacher: ModelBundle, config: Any, dataset: Dataset, progress: Progress) -> ModelBundle:
    """The techniques.distill step for a speech model (after `check`): build the student, train its decoder, keep
    the best epoch."""
    student = _student(teacher, config)
    train = dataset.train
    held_out = min(VALIDATION, len(train) // 5)
    fit, validation = train.head(len(train) - held_out), Split(train.inputs[-held_out:], train.labels[-held_out:])
    control = config.alpha == 0
    targets, soft, cached = _targets(teacher, student, train, control, scaled(progress, 0.0, 0.35))
    kl_usable = soft is not None and not control
    start = time.perf_counter()  # training: the encoder's matching and the decoder's epochs
    matched = _match_encoder(teacher, student, fit, config, scaled(progress, 0.35, 0.42))
    encoded = _encoded(student, train, scaled(progress, 0.42, 0.45))
    validation_texts = student.preprocess.decode(targets[len(fit):])
    rate = config.learning_rate or RATE
    model, history, best_epoch = _train(student, config, targets, soft if kl_usable else None, encoded, fit,
                                        validation, validation_texts, rate, scaled(progress, 0.45, 1.0))
    seconds = time.perf_counter() - start
    series = "control (hard labels)" if control else "student (distilled)"
    if control:
        how = "Hard-label control: trained on the dataset's reference transcripts, the teacher unused"
    else:
        how = (f"Distilled on {teacher.name}'s transcripts"
               + (f", KL on its top-{TOP_K} token distributions (T={config.temperature:g}, alpha={config.alpha:g})"
                  if kl_usable else " only (the student's tokenizer differs from the teacher's, so no KL)"))
    note = (f"{how}: student {student.name} with {_params(model) / 1e6:.2f}M parameters, teacher {teacher.name} with "
            f"{_params(teacher.model) / 1e6:.2f}M; decoder trained, encoder frozen, reading "
            f"{'the clip alone' if config.audio_context == 'clip' else '30 s windows'}; {len(history)} epochs on "
            f"{len(fit):,} clips, learning rate {rate:g}, "
            + (f"epoch {best_epoch} kept by validation WER" if best_epoch else "no epoch beat the untrained student's "
               "validation WER, so it is kept untrained")
            + (f"; teacher's outputs {'from the cache' if cached else 'computed once and cached'}." if not control
               else "."))
    trainable = sum(p.numel() for p in model.model.decoder.parameters())
    report = {"trainable_params": trainable, "epochs_run": len(history), "teacher_params": _params(teacher.model),
              "student_params": _params(model), "student": student.name, "distill_role": series,
              "audio_context": config.audio_context, "kl": kl_usable, "best_epoch": best_epoch,
              "encoder_losses": matched}
    return replace(student, head_trained=True).derived(
        model, note=note, structure="distill" if config.audio_context == "clip" else None,
        audio_context=config.audio_context, train_seconds=seconds, train_examples=len(fit), history=history,
        trained_on=devices.hardware(), report=report)  # its own loop, on the CPU (not through Accelerate)


def check(config: Any, dataset: Dataset | None) -> None:
    def require(condition: bool, name: str, rule: str) -> None:
        if not condition:
            raise MicrobudgetError(f"Setting {name}={getattr(config, name)!r} is out of range for a speech student: "
                                   f"it must be {rule}.", "Fix the value and run again.")

    require(config.student in STUDENTS, "student", f"one of {', '.join(STUDENTS)} (no narrow Whisper)")
    defaults = type(config)()
    changed = [name for name in CLASSIFIER_ONLY if getattr(config, name) != getattr(defaults, name)]
    if changed:
        raise MicrobudgetError(f"distill's {', '.join(changed)} apply to text and vision students, not to a speech "
                               "student.", "Leave them at their defaults for a Whisper.")
    if dataset is None or len(dataset.train) < 5:
        raise MicrobudgetError("distill trains a speech student on a dataset's train clips, and there are none "
                               "(or fewer than 5).", "Run it with a speech dataset that has train clips.")
    if max(len(clip) for clip in dataset.train.inputs) > WINDOW_SECONDS * SAMPLE_RATE:
        raise MicrobudgetError(f"distill trains on clips up to {WINDOW_SECONDS} s; this dataset has longer ones.",
                               "Cut the training audio into shorter clips.")


def _student(teacher: ModelBundle, config: Any) -> ModelBundle:
    """The untrained student, its encoder frozen, preprocessing cut to the clip when asked; the teacher untouched."""
    if config.student == "layers":
        if teacher.runtime.ID != PYTORCH or teacher.meta.get("structure") or any(
                p.dtype != torch.float32 for p in teacher.model.parameters()):
            raise MicrobudgetError("A student built from the teacher's weights needs a full-precision PyTorch teacher; "
                                   f"{teacher.name} was quantized or exported.",
                                   "Put distill before quantization in the pipeline, or pick a student model.")
        total = teacher.model.config.decoder_layers
        student = cut_decoder(teacher, decoder_layers(total, config.layers, config.which_layers))
    else:
        student = load_model(ModelSpec(config.student_model.strip()), task=SPEECH).copy()
        if student.runtime.ID != PYTORCH:
            raise MicrobudgetError(f"Student {student.name} is not a PyTorch speech model.",
                                   "Pick a Whisper id or folder as student_model.")
    torch.manual_seed(config.seed)
    model = clip_encoder(student.model) if config.audio_context == "clip" else student.model
    model.model.encoder.requires_grad_(False)  # Distil-Whisper's recipe: the encoder is kept as it is
    # The token table (tied to the output layer: half of tiny.en's weights) and the positions stay as pretrained:
    # a few hundred clips of synthetic speech would pull the 51,864 rows towards their few hundred words.
    model.model.decoder.embed_tokens.requires_grad_(False)
    model.model.decoder.embed_positions.requires_grad_(False)
    preprocess = dataclasses.replace(student.preprocess,
                                     clip_frames=CLIP_FRAMES if config.audio_context == "clip" else 0)
    return replace(student, model=model, preprocess=preprocess)


def _target_ids(bundle: ModelBundle, text: str) -> np.ndarray:
    """The student's start tokens, `text` in its tokenizer, then end of text."""
    tokens = bundle.preprocess.processor.tokenizer(text.strip(), add_special_tokens=False).input_ids[:MAX_NEW_TOKENS]
    return np.array([*bundle.preprocess.start_ids, *tokens, bundle.preprocess.generation.eos_token_id])


def _targets(teacher: ModelBundle, student: ModelBundle, split: Split, control: bool,
             progress: Progress) -> tuple[list[np.ndarray], list[np.ndarray] | None, bool]:
    """Per clip the token ids to learn (start tokens included) and, where the student's tokenizer is the teacher's,
    the teacher's top-k logits for each predicted token [steps, 2, k] (values, ids); whether they came cached."""
    if control:  # the hard-label control: the references, no teacher
        return [_target_ids(student, text) for text in split.labels], None, False
    rows, cached = cached_array("speech-teacher", teacher.name, [
        teacher.name, teacher.runtime.digest(teacher.model), split.fingerprint(), TOP_K, TEACHER_VERSION],
        lambda: _teacher_pass(teacher, split, progress))
    clip = rows[:, 0].astype(np.int64)
    same_vocab = (student.preprocess.processor.tokenizer.get_vocab()
                  == teacher.preprocess.processor.tokenizer.get_vocab())
    ids, soft = [], []
    for n in range(len(split)):
        mine = rows[clip == n]
        tokens = mine[:, 1].astype(np.int64)
        if same_vocab:
            ids.append(np.array([*student.preprocess.start_ids, *tokens]))
            soft.append(mine[:, 2:].reshape(len(mine), 2, TOP_K))
        else:  # retokenized: the teacher's text in the student's vocabulary
            ids.append(_target_ids(student, teacher.preprocess.decode([tokens])[0]))
    return ids, soft if same_vocab else None, cached


@torch.inference_mode()
def _teacher_pass(teacher: ModelBundle, split: Split, progress: Progress) -> np.ndarray:
    """One row per predicted token: clip number, token id, then the teacher's top-k logits and their token ids."""
    rows = []
    for n, clip in enumerate(split.inputs):
        progress(n / len(split), f"Teacher {teacher.name}: transcribing train clip {n + 1} of {len(split)} (once)")
        features = teacher.preprocess([clip])
        ids = generate(teacher, features)[0]
        ids = ids[:int((ids != teacher.preprocess.generation.eos_token_id).sum()) + 1]  # up to the first end token
        starts = len(teacher.preprocess.start_ids)
        logits = teacher.model(input_features=features["input_features"], decoder_input_ids=ids[None, :-1]).logits
        top = logits[0, starts - 1:].topk(TOP_K, dim=-1)  # the predictions of the transcript's tokens
        steps = len(ids) - starts
        rows.append(np.concatenate([np.full((steps, 1), n), ids[starts:, None].numpy(), top.values.numpy(),
                                    top.indices.numpy()], axis=1).astype(np.float32))  # ids < 2^24: exact in fp32
    return np.concatenate(rows)


def _match_encoder(teacher: ModelBundle, student: ModelBundle, split: Split, config: Any,
                   progress: Progress) -> list[float]:
    """A clip student's encoder trained to give, for the clip's own frames, the states the teacher's encoder gives
    them inside its 30 s window (MSE): the decoder then reads what it was trained on. Per-epoch losses ([] when the
    student reads 30 s windows, as the teacher does)."""
    if not student.preprocess.clip_frames:
        return []
    lengths = [_positions(len(clip)) for clip in split.inputs]

    @torch.inference_mode()
    def window_states() -> np.ndarray:
        states, tails = [], []
        for n, clip in enumerate(split.inputs):
            progress(0.5 * n / len(split), f"Teacher's encoder: clip {n + 1} of {len(split)} (once)")
            full = teacher.model.model.encoder(teacher.preprocess([clip])["input_features"]).last_hidden_state[0]
            states.append(full[:lengths[n]].numpy())
            tails.append(full[-TAIL:].numpy())
        return np.concatenate([*states, np.mean(tails, axis=0)])  # the clips' states, then the mean tail

    flat, _ = cached_array("speech-teacher-encoder", teacher.name, [
        teacher.runtime.digest(teacher.model), split.fingerprint(), CLIP_FRAMES, TAIL, TEACHER_VERSION], window_states)
    targets = list(torch.from_numpy(flat[:-TAIL]).split(lengths))
    student.model.model.encoder.tail.copy_(torch.from_numpy(flat[-TAIL:]))
    encoder = student.model.model.encoder
    encoder.requires_grad_(True)
    encoder.embed_positions.requires_grad_(False)
    parameters = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=RATE, weight_decay=0.01)
    batches = _batches(targets, len(split))
    rng, losses = np.random.default_rng(config.seed), []
    encoder.train()
    for epoch in range(ENCODER_EPOCHS):
        total = []
        for b, index in enumerate(rng.permutation(len(batches))):
            batch = batches[index]
            features = student.preprocess([split.inputs[i] for i in batch])["input_features"]
            states = encoder(features, with_tail=False).last_hidden_state
            loss = F.mse_loss(states, torch.stack([targets[i] for i in batch]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            total.append(float(loss))
            progress(0.5 + 0.5 * (epoch * len(batches) + b + 1) / (ENCODER_EPOCHS * len(batches)),
                     f"Encoder epoch {epoch + 1}/{ENCODER_EPOCHS}: matching the teacher's states, loss "
                     f"{np.mean(total):.4f}")
        losses.append(float(np.mean(total)))
    encoder.eval().requires_grad_(False)  # frozen again while the decoder trains
    return losses


def _encoded(student: ModelBundle, split: Split, progress: Progress) -> list[torch.Tensor] | None:
    """The frozen encoder's output per clip, cached, when it reads the clip alone (a few hundred KB a clip; a 30 s
    window's would be 2.3 MB, so window students run their encoder in each step instead)."""
    if not student.preprocess.clip_frames:
        return None
    encoder = student.model.model.encoder
    lengths = [_positions(len(clip)) + TAIL for clip in split.inputs]

    @torch.inference_mode()
    def compute() -> np.ndarray:
        outputs = []
        for n, clip in enumerate(split.inputs):
            progress(n / len(split), f"Student's encoder: clip {n + 1} of {len(split)} (once)")
            outputs.append(encoder(student.preprocess([clip])["input_features"]).last_hidden_state[0].numpy())
        return np.concatenate(outputs)

    flat, _ = cached_array("speech-encoder", student.name, [student.runtime.digest(encoder), split.fingerprint(),
                                                            CLIP_FRAMES, TAIL, TEACHER_VERSION], compute)
    return list(torch.from_numpy(flat).split(lengths))


def _positions(samples: int) -> int:
    """Encoder positions of a clip of `samples` in clip mode: whole seconds of frames, halved by the stride-2 conv."""
    return math.ceil(max(samples, 1) / (CLIP_FRAMES * HOP)) * CLIP_FRAMES // 2


def _train(student: ModelBundle, config: Any, targets: list[np.ndarray], soft: list[np.ndarray] | None,
           encoded: list[torch.Tensor] | None, fit: Split, validation: Split, validation_texts: list[str], rate: float,
           progress: Progress) -> tuple[nn.Module, list[dict[str, float]], int]:
    """AdamW on the decoder, batches of clips with one encoder length; the best epoch by validation WER (0: none
    beat the untrained student)."""
    model = student.model
    rng = np.random.default_rng(config.seed)
    batches = _batches(encoded, len(fit))

    def encoder_states(batch: list[int]) -> torch.Tensor:
        if encoded is not None:
            return torch.stack([encoded[i] for i in batch])
        with torch.no_grad():  # a window student: its frozen encoder runs in each step
            features = student.preprocess([fit.inputs[i] for i in batch])
            return model.model.encoder(features["input_features"]).last_hidden_state

    parameters = [p for p in model.model.decoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=rate, weight_decay=0.01)
    total, share = config.epochs * len(batches), 1 / (config.epochs * (len(batches) + 1))  # a validation per epoch
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # warm up, then decay linearly to 0
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
    best_wer, best_state, best_epoch, history = _wer(student, validation, validation_texts), None, 0, []
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = []
        for b, index in enumerate(rng.permutation(len(batches))):
            batch = batches[index]
            loss = _loss(model, student, [targets[i] for i in batch],
                         None if soft is None else [soft[i] for i in batch],
                         encoder_states(batch), config)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
            progress(((epoch - 1) * (len(batches) + 1) + b + 1) * share,
                     f"Epoch {epoch}/{config.epochs}: batch {b + 1} of {len(batches)}, loss {np.mean(losses):.3f}")
        model.eval()
        wer = _wer(student, validation, validation_texts)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_wer": wer})
        progress(epoch / config.epochs, f"Epoch {epoch}: validation WER {wer:.1%}",
                 **history[-1])
        if wer < best_wer or best_state is None and wer == best_wer:
            best_wer, best_state, best_epoch = wer, copy.deepcopy(model.model.decoder.state_dict()), epoch
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.model.decoder.load_state_dict(best_state)
    return model.eval(), history, best_epoch


def _batches(encoded: list[torch.Tensor] | None, count: int) -> list[list[int]]:
    """Clip numbers in batches of BATCH, each batch of one encoder length (cross-attention takes no mask)."""
    by_length: dict[int, list[int]] = {}
    for n in range(count):
        by_length.setdefault(0 if encoded is None else len(encoded[n]), []).append(n)
    return [group[i:i + BATCH] for group in by_length.values() for i in range(0, len(group), BATCH)]


def _loss(model: nn.Module, student: ModelBundle, targets: list[np.ndarray], soft: list[np.ndarray] | None,
          encoded: torch.Tensor, config: Any) -> torch.Tensor:
    """(1 - alpha) * cross-entropy on the target tokens + alpha * T^2 * KL(teacher's top-k || student) per token."""
    eos, starts = student.preprocess.generation.eos_token_id, len(student.preprocess.start_ids)
    width = max(len(t) for t in targets) - 1
    inputs = torch.full((len(targets), width), eos)
    for row, ids in enumerate(targets):
        inputs[row, :len(ids) - 1] = torch.from_numpy(ids[:-1])
    hidden = model.model.decoder(input_ids=inputs, encoder_hidden_states=encoded).last_hidden_state
    # Only the positions that predict transcript tokens: the start tokens are given, the padding is not text.
    rows = torch.cat([torch.full((len(ids) - starts,), r) for r, ids in enumerate(targets)])
    cols = torch.cat([torch.arange(starts - 1, len(ids) - 1) for ids in targets])
    logits = model.proj_out(hidden[rows, cols])
    labels = torch.from_numpy(np.concatenate([ids[starts:] for ids in targets]))
    loss = F.cross_entropy(logits, labels)
    if soft is None or config.alpha == 0:
        return loss
    top = torch.from_numpy(np.concatenate(soft))  # [tokens, 2, k]
    teacher = F.log_softmax(top[:, 0] / config.temperature, dim=-1)  # renormalised over the teacher's top k
    mine = F.log_softmax(logits / config.temperature, dim=-1).gather(1, top[:, 1].long())
    kl = (teacher.exp() * (teacher - mine)).sum(-1).mean()
    return config.alpha * kl * config.temperature ** 2 + (1 - config.alpha) * loss


def _wer(student: ModelBundle, validation: Split, texts: list[str]) -> float:
    """The student's WER on the held-out clips against the texts it learns (the teacher's, or the references)."""
    if not len(validation):
        return 0.0
    was_training = student.model.training
    student.model.eval()
    wer = error_rate(texts, [transcribe(student, clip).text for clip in validation.inputs])
    student.model.train(was_training)
    return wer


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
