"""Causal language models: the bundled SmolLM2 (GGUF), hub ids and local folders, as an LM or as a classifier.

As a classifier the LM answers by constrained scoring: each label is appended to the prompt and the
label whose tokens the LM finds most likely wins (no free text is parsed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import transformers

from ..support.assets import SMOLLM2, asset_path
from ..support.atomic import folder_atomically
from ..support.errors import MicrobudgetError
from ..support.paths import home
from .bundle import CAUSAL_LM, PROMPTED_LM, TEXT, ModelBundle
from .hf import TextPreprocessor, from_pretrained, quiet

LM_FAMILY = CAUSAL_LM
PROMPTED_FAMILY = PROMPTED_LM
INSTRUCTION = "Classify each text as one of: {labels}.\n\n"
EXAMPLE = "Text: {text}\nAnswer: {label}\n\n"
MAX_CONTEXT = 2048


def is_causal_lm(config: Any) -> bool:
    return any(a.endswith("ForCausalLM") for a in (config.architectures or []))


def smollm2_folder() -> str:
    """The bundled GGUF converted once to a transformers folder (the GGUF conversion takes ~30 s, a reload 1 s)."""
    gguf = asset_path(SMOLLM2)  # verifies the sha256 first
    folder = home() / "models" / f"smollm2-135m-{SMOLLM2.sha256[:12]}-fast"  # ("-fast": no tokenizer.model)
    if not (folder / "config.json").exists():
        with quiet():
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                                      dtype=torch.float32)
        with folder_atomically(folder) as partial:  # an interrupted conversion leaves no half entry
            model.save_pretrained(partial)
            # The fast tokenizer's files only: the GGUF-read slow tokenizer's vocab_file is the GGUF itself, which
            # a legacy save copies in whole as tokenizer.model (98 MB in every artifact made from this model).
            tokenizer.save_pretrained(partial, legacy_format=False)
    return str(folder)


def load_causal_lm(source: str, name: str | None = None) -> ModelBundle:
    """A causal LM as it is (task causal-lm): generation and perplexity."""
    with quiet():
        model = from_pretrained(transformers.AutoModelForCausalLM, source, dtype=torch.float32)
    return ModelBundle(model=model.eval(), task=CAUSAL_LM, labels=[], preprocess=lm_preprocessor(source, model.config),
                       name=name or source, meta={"family": LM_FAMILY, "source": str(source)})


def lm_preprocessor(source: str | Path, config: Any) -> TextPreprocessor:
    """Right-padded tokens (scores and perplexity read positions from the left), a pad token where none is set."""
    tokenizer = from_pretrained(transformers.AutoTokenizer, str(source))
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return TextPreprocessor(tokenizer, max_length=context_length(tokenizer, config))


def context_length(tokenizer: Any, config: Any) -> int:
    """The longest input accepted: the model's positions and the tokenizer's limit, capped at 2,048 for CPU memory."""
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length, MAX_CONTEXT]
    return int(min(limit for limit in limits if limit))


@dataclass(frozen=True)
class PromptPreprocessor:
    """Texts -> one sequence per (text, label): instruction + examples + the text + the label's tokens."""

    tokenizer: Any
    labels: tuple[str, ...]
    shots: tuple[tuple[str, str], ...] = ()  # (text, label) examples placed in the prompt (few-shot)
    max_length: int = 2048

    def prompt(self, text: str) -> str:
        examples = "".join(EXAMPLE.format(text=t, label=label) for t, label in self.shots)
        return INSTRUCTION.format(labels=", ".join(self.labels)) + examples + f"Text: {text}\nAnswer:"

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        rows, scored = [], []
        for text in texts:
            prompt = self.tokenizer(self.prompt(text)).input_ids
            for label in self.labels:
                answer = self.tokenizer(" " + label, add_special_tokens=False).input_ids
                if len(prompt) + len(answer) > self.max_length:
                    raise MicrobudgetError(
                        f"A prompt is {len(prompt) + len(answer)} tokens, longer than the model's context of "
                        f"{self.max_length}.", "Use fewer examples in the prompt (shots) or shorter texts.")
                rows.append(prompt + answer)
                scored.append([0] * len(prompt) + [1] * len(answer))
        width = max(len(row) for row in rows)
        pad = self.tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([row + [pad] * (width - len(row)) for row in rows]),
            "attention_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows]),
            "scored": torch.tensor([mask + [0] * (width - len(mask)) for mask in scored]),
        }

    def save_pretrained(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)


def is_language_model(bundle: ModelBundle) -> bool:
    """A causal LM, or one answering a classification task from a prompt (what a GGUF file holds)."""
    return bundle.meta.get("family") in (LM_FAMILY, PROMPTED_FAMILY)


def language_model(bundle: ModelBundle) -> torch.nn.Module:
    """The causal LM a bundle runs: its model, or the LM a prompted classifier reads."""
    return bundle.model.lm if bundle.meta.get("family") == PROMPTED_FAMILY else bundle.model


def as_classifier(lm: ModelBundle, labels: Sequence[str], shots: Sequence[tuple[str, str]] = ()) -> ModelBundle:
    """The LM answering a classification task zero-shot (no shots) or few-shot."""
    preprocess = PromptPreprocessor(lm.preprocess.tokenizer, tuple(labels), tuple(shots), lm.preprocess.max_length)
    return ModelBundle(model=lm.runtime.prompted(lm.model, len(labels)), task=TEXT, labels=list(labels),
                       preprocess=preprocess, name=lm.name,
                       meta={**lm.meta, "family": PROMPTED_FAMILY, "shots": [list(s) for s in shots]})


def load_saved_llm(folder: Path, info: dict[str, Any], with_weights: bool = False) -> ModelBundle:
    """The architecture of a saved LM or prompted classifier, without weights (saved.load_saved fills them)."""
    # Imported here: transformers' modeling code (and torchao's noisy import) is not needed by a bad id's message.
    from transformers.modeling_utils import no_init_weights

    config = transformers.AutoConfig.from_pretrained(folder)
    with no_init_weights():  # the stored weights replace these: skip the slow random initialisation
        model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.tie_weights()  # skipped with the initialisation; weight-only's restructure finds the tie by it
    lm = ModelBundle(model=model, task=CAUSAL_LM, labels=[], preprocess=lm_preprocessor(folder, config), name=info["name"],
                     meta=dict(info["meta"]))
    return as_saved(lm, info)


def saved_lm_file(model: Any, folder: Path, info: dict[str, Any]) -> ModelBundle:
    """A saved language model file (GGUF) that is the whole model: its tokenizer beside it, as it was saved."""
    lm = ModelBundle(model=model, task=CAUSAL_LM, labels=[], name=info["name"], meta=dict(info["meta"]),
                     preprocess=lm_preprocessor(folder, config=None))
    return as_saved(lm, info)


def as_saved(lm: ModelBundle, info: dict[str, Any]) -> ModelBundle:
    """A saved LM as it was saved: as it is, or answering the saved classification task with the saved shots."""
    if info["meta"]["family"] == PROMPTED_FAMILY:
        lm = as_classifier(lm, info["labels"], [tuple(s) for s in info["meta"].get("shots", [])])
        lm.meta = dict(info["meta"])
    return lm


@dataclass
class Generation:
    """Greedy tokens of one prompt, one at a time (stop by no longer asking), with the time each took."""

    bundle: ModelBundle
    prompt: str
    max_new_tokens: int
    stop_at_end: bool = True  # stop at an end-of-text token; False generates exactly max_new_tokens
    seconds: list[float] = field(default_factory=list)  # per token, the first one including the prompt's pass
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    prompt_tokens: int = 0

    def __iter__(self) -> Iterator[str]:
        # Token by token, not model.generate(): the caller gets each token as it comes and can stop at any
        # point (a Streamlit stop leaves nothing running), and each token's time is known.
        tokenizer = self.bundle.preprocess.tokenizer
        ids = tokenizer(self.prompt).input_ids
        self.prompt_tokens = len(ids)
        if len(ids) + self.max_new_tokens > self.bundle.preprocess.max_length:
            raise MicrobudgetError(f"The prompt is {len(ids)} tokens; with {self.max_new_tokens} new tokens it "
                                   f"exceeds the model's context of {self.bundle.preprocess.max_length}.",
                                   "Shorten the prompt or generate fewer tokens.")
        steps, made = self.bundle.runtime.greedy(self.bundle.model, ids), self.tokens
        for _ in range(self.max_new_tokens):
            start = time.perf_counter()
            token = next(steps)
            self.seconds.append(time.perf_counter() - start)
            if self.stop_at_end and token in tokenizer.all_special_ids:
                return
            before = tokenizer.decode(made)
            made.append(token)
            yield tokenizer.decode(made)[len(before):]  # decode whole: pieces of one character join up


def complete(bundle: ModelBundle, prompt: str, max_new_tokens: int, stop_at_end: bool = True) -> Generation:
    """Run a greedy completion to the end; the Generation holds the per-token times."""
    generation = Generation(bundle, prompt, max_new_tokens, stop_at_end)
    generation.text = "".join(generation)
    return generation


def perplexity(bundle: ModelBundle, texts: Sequence[str], batch_size: int = 16) -> float:
    """exp(mean negative log-likelihood per predicted token) over `texts`, each scored from its own start."""
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(texts), batch_size):
        batch = bundle.preprocess(texts[start:start + batch_size])
        logits = torch.from_numpy(bundle.runtime.run(bundle.model, batch))
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), batch["input_ids"][:, 1:],
                                                reduction="none")
        mask = batch["attention_mask"][:, 1:].float()
        total_nll += float((nll * mask).sum())
        total_tokens += int(mask.sum())
    if total_tokens == 0:
        raise MicrobudgetError("The texts for perplexity hold no tokens to predict.", "Give longer texts.")
    return float(torch.exp(torch.tensor(total_nll / total_tokens)))
