"""Smaller members of the bundled families, built in the project: fewer layers of a BERT, a narrower BERT or
MobileNetV2, a BERT whose word table keeps only the tokens a task uses."""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
import transformers
from torch import nn

from ..support.errors import MicrobudgetError
from .bundle import ModelBundle
from .pooling import uses_layer_mean
from .vision import MobileNetV2


def keep_layers(bundle: ModelBundle, layers: list[int]) -> ModelBundle:
    """A copy of a BERT classifier with only the encoder layers at `layers` (0-based, in order).

    The kept layers keep their pretrained weights (the DistilBERT recipe's initialisation). A layer-mean
    head reads one slice per hidden state; it keeps the slices of the embeddings and of the kept layers.
    """
    config = getattr(bundle.model, "config", None)
    total = getattr(config, "num_hidden_layers", 0)
    if not hasattr(_encoder(bundle.model), "encoder"):
        raise MicrobudgetError(f"Keeping layers needs a BERT-family text model; {bundle.name} is not one.",
                               "Pick minilm-l6, mpnet-base or another BERT-family encoder.")
    if not layers or sorted(set(layers)) != list(layers) or layers[0] < 0 or layers[-1] >= total:
        raise MicrobudgetError(f"Cannot keep layers {layers} of a {total}-layer model.",
                               f"Give distinct layer numbers from 0 to {total - 1}, in order.")
    model = copy.deepcopy(bundle.model)
    encoder = _encoder(model).encoder
    encoder.layer = nn.ModuleList(encoder.layer[i] for i in layers)
    model.config = copy.deepcopy(config)  # the original's config is shared; never edit it
    model.config.num_hidden_layers = len(layers)
    if uses_layer_mean(config):
        hidden = config.hidden_size
        states = [0] + [i + 1 for i in layers]  # hidden state 0 is the embeddings' output
        old = model.classifier
        model.classifier = nn.Linear(hidden * len(states), old.out_features)
        with torch.no_grad():
            model.classifier.weight.copy_(torch.cat([old.weight[:, s * hidden:(s + 1) * hidden] for s in states], 1))
            model.classifier.bias.copy_(old.bias)
    return replace(bundle, model=model.eval(), meta=dict(bundle.meta), name=f"{bundle.name} layers {layers}")


LAYER_CHOICES = ("evenly", "every-other", "first")


def pick_layers(total: int, keep: int, how: str) -> list[int]:
    """Which of `total` layers to keep: `evenly` the top layer of each of `keep` equal groups (2 of 6: [2, 5]),
    `every-other` DistilBERT's 0, 2, 4, ..., `first` the bottom `keep`."""
    if not 1 <= keep <= total:
        raise MicrobudgetError(f"Cannot keep {keep} of {total} layers.", f"Keep from 1 to {total} layers.")
    if how == "every-other" and keep > (total + 1) // 2:
        raise MicrobudgetError(f"Every other layer of {total} gives at most {(total + 1) // 2} layers, not {keep}.",
                               "Keep fewer layers, or choose evenly.")
    layers = {"evenly": [round((i + 1) * total / keep) - 1 for i in range(keep)],
              "every-other": list(range(0, total, 2))[:keep], "first": list(range(keep))}
    if how not in layers:
        raise MicrobudgetError(f"Unknown layer choice '{how}'.", f"Use one of: {', '.join(LAYER_CHOICES)}.")
    return layers[how]


def narrow(bundle: ModelBundle, width: float, from_teacher: bool, seed: int = 0) -> ModelBundle:
    """The same architecture at `width` times the channels (MobileNetV2) or hidden size (BERT).

    `from_teacher`: each weight is the leading slice of the teacher's (its first channels, heads and
    features), a warm start; else random weights.
    """
    if not 0.1 <= width <= 1.0:
        raise MicrobudgetError(f"Width {width} is out of range.", "Give a width from 0.1 to 1.0, e.g. 0.5 or 0.35.")
    if bundle.meta.get("family") == "mobilenet-v2":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MobileNetV2(num_classes=len(bundle.labels), width_mult=width)
        meta = {**bundle.meta, "width_mult": width}
    elif hasattr(getattr(bundle.model, "bert", None), "encoder"):
        config = copy.deepcopy(bundle.model.config)
        head_size = config.hidden_size // config.num_attention_heads
        config.num_attention_heads = max(1, round(config.num_attention_heads * width))
        config.hidden_size = config.num_attention_heads * head_size  # whole heads, so attention still splits evenly
        config.intermediate_size = max(1, round(config.intermediate_size * width))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = type(bundle.model)(config)
        meta = dict(bundle.meta)
    else:
        raise MicrobudgetError(f"A narrower width needs a MobileNetV2 or a BERT-family model; {bundle.name} is neither.",
                               "Pick mobilenet-v2 or minilm-l6, or use a layers student.")
    if from_teacher:
        _copy_leading_slices(model, bundle.model)
    return replace(bundle, model=model.eval(), meta=meta, name=f"{bundle.name} x{width:g}",
                   head_trained=from_teacher)


@torch.no_grad()
def _copy_leading_slices(student: nn.Module, teacher: nn.Module) -> None:
    """Fill each student weight with the leading block of the teacher's weight of the same name."""
    weights = teacher.state_dict()
    if uses_layer_mean(getattr(teacher, "config", None)):  # one slice per hidden state: [out, states, hidden]
        head = weights["classifier.weight"]
        weights["classifier.weight"] = head.reshape(head.shape[0], -1, teacher.config.hidden_size)[
            :, :, :student.config.hidden_size].reshape(head.shape[0], -1)
    for name, tensor in student.state_dict().items():
        tensor.copy_(weights[name][tuple(slice(0, n) for n in tensor.shape)])


def trim_vocab(bundle: ModelBundle, texts: list[str]) -> tuple[ModelBundle, int]:
    """A copy whose word table keeps only the tokens `texts` use (and the special tokens); also the old size.

    The tokenizer is rebuilt over the kept tokens. WordPiece picks the longest known piece, and every piece
    it picked for these texts is kept, so it splits them exactly as before: the same ids, renumbered, and
    the same predictions. Other text may split into other kept pieces or [UNK].
    """
    tokenizer = bundle.preprocess.tokenizer
    state = json.loads(tokenizer.backend_tokenizer.to_str()) if tokenizer.is_fast else {}
    if state.get("model", {}).get("type") != "WordPiece" or not hasattr(_encoder(bundle.model), "embeddings"):
        raise MicrobudgetError(f"Trimming the vocabulary needs a BERT-family model with a WordPiece tokenizer; "
                               f"{bundle.name} is not one.", "Turn trim_vocab off for this student.")
    used = {i for ids in bundle.preprocess(texts)["input_ids"].tolist() for i in ids}
    kept = sorted(used | set(tokenizer.all_special_ids))
    new_id = {old: new for new, old in enumerate(kept)}
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        _renumber_tokenizer_files(Path(folder), tokenizer.convert_ids_to_tokens(kept), new_id)
        trimmed_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = copy.deepcopy(bundle.model)
    model.config = copy.deepcopy(model.config)  # the original's config is shared; never edit it
    embeddings = _encoder(model).embeddings
    old_table = embeddings.word_embeddings
    pad = new_id.get(tokenizer.pad_token_id)
    embeddings.word_embeddings = nn.Embedding(len(kept), old_table.embedding_dim, padding_idx=pad)
    with torch.no_grad():
        embeddings.word_embeddings.weight.copy_(old_table.weight[kept])
    model.config.vocab_size, model.config.pad_token_id = len(kept), pad
    trimmed = replace(bundle, model=model.eval(), preprocess=replace(bundle.preprocess, tokenizer=trimmed_tokenizer),
                      meta=dict(bundle.meta))
    before = bundle.preprocess(texts[:64])["input_ids"].apply_(lambda i: new_id[i])
    if not torch.equal(trimmed.preprocess(texts[:64])["input_ids"], before):  # the promise above, checked
        raise MicrobudgetError(f"The trimmed tokenizer of {bundle.name} splits text differently from the original.",
                               "Turn trim_vocab off for this student.")
    return trimmed, old_table.num_embeddings


def _encoder(model: nn.Module) -> nn.Module | None:
    """The transformer under a classifier head (`bert`, `mpnet`: transformers' base_model), None for other models."""
    return getattr(model, "base_model", None) if hasattr(model, "config") else None


def _renumber_tokenizer_files(folder: Path, tokens: list[str], new_id: dict[int, int]) -> None:
    """Rewrite a saved WordPiece tokenizer's files so its vocabulary is `tokens`, numbered from 0."""
    path = folder / "tokenizer.json"
    state = json.loads(path.read_text())
    state["model"]["vocab"] = {token: i for i, token in enumerate(tokens)}
    for added in state.get("added_tokens", []):
        added["id"] = new_id[added["id"]]
    post = state.get("post_processor") or {}
    for special in post.get("special_tokens", {}).values():  # TemplateProcessing
        special["ids"] = [new_id[i] for i in special["ids"]]
    for key in ("cls", "sep"):  # BertProcessing
        if key in post:
            post[key][1] = new_id[post[key][1]]
    path.write_text(json.dumps(state))
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["added_tokens_decoder"] = {str(new_id[int(i)]): token
                                      for i, token in config.get("added_tokens_decoder", {}).items()}
    config_path.write_text(json.dumps(config))
    if (folder / "vocab.txt").exists():
        (folder / "vocab.txt").write_text("\n".join(tokens) + "\n")
