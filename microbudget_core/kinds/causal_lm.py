"""Causal language models measured as such: perplexity on the eval texts, and a fixed greedy completion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import data, yardstick
from ..data import Split
from ..figures import Measured
from ..measure import MeasureConfig
from ..models.bundle import CAUSAL_LM, TEXT, ModelBundle
from ..models.hf import TextPreprocessor
from ..models.llm import complete, is_causal_lm, lm_preprocessor, load_causal_lm, perplexity
from ..support.progress import Progress
from .text_classification import dynamic_axes, example_inputs  # noqa: F401 (the kind's API: the same as text's)

ID = CAUSAL_LM
DESCRIPTION = "causal language model"
DOES = "is a causal language model"
PICK = "a language model such as smollm2-135m (or a hub id of one)"
WORD_EMBEDDINGS = True
PROMPTED_FOR = (TEXT,)  # it answers a text classification task from a prompt (models.llm.as_classifier)
OPTIMUM_CLASS = "ORTModelForCausalLM"  # optimum.onnxruntime's class that exports this kind
RECIPE = None  # no baseline training: the model is measured as it is
INPUTS = data.TEXT_INPUTS
QUALITY = "perplexity"
HIGHER_IS_BETTER = False
GPU_MEASURED = False  # measured on the CPU: its generation loop (models.llm.complete) feeds CPU tensors
TIMED_COMPLETIONS = 4  # rounds at most (a completion each); a level's tokens/s is their median
PIPELINE = "text-generation"  # transformers' pipeline for a PyTorch export
# The model card's snippet: what to do with the model once loaded.
card_usage = ('from microbudget_core.models.llm import complete\n'
              'print(complete(model, "The three best ways to make a model smaller are", 32).text)')


@dataclass
class Metrics:
    prompt_tokens_per_s: float  # the prompt's tokens read in one pass (prompt processing)
    perplexity: float
    fidelity: float  # share of the completion's tokens equal to the original's at the same position
    prompt: str
    completion: str


@dataclass
class Figures(Metrics, Measured):
    """A language model's row: its Metrics beside what every row has."""


def quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None, config: MeasureConfig,
            progress: Progress) -> tuple[Metrics, np.ndarray]:
    """Perplexity on the eval texts; the text of a fixed-length greedy completion of the prompt, whose tokens are
    the predictions."""
    progress(0.0, "Generating: warm-up")
    complete(bundle, config.prompt, 2, stop_at_end=False)
    progress(0.1, f"Generating {config.new_tokens} tokens")
    generation = complete(bundle, config.prompt, config.new_tokens, stop_at_end=False)
    tokens = np.array(generation.tokens)
    progress(0.3, f"Measuring perplexity on {len(eval_split)} texts")
    metrics = Metrics(
        prompt_tokens_per_s=generation.prompt_tokens / generation.seconds[0],
        perplexity=perplexity(bundle, eval_split.inputs),
        fidelity=1.0 if reference is None else float(np.mean(tokens == reference[: len(tokens)])),
        prompt=config.prompt,
        completion=generation.text,
    )
    return metrics, tokens


def speed_work(bundle: ModelBundle, eval_split: Split, config: MeasureConfig) -> yardstick.Work:
    """One whole completion of the prompt a round; its units are its tokens (so latency is per token, the prompt's
    pass shared out)."""
    def completion() -> int:
        return len(complete(bundle, config.prompt, config.new_tokens, stop_at_end=False).tokens)
    return {"latency": [[completion]] * min(config.rounds, TIMED_COMPLETIONS)}


def speed_fields(timing: dict[str, yardstick.Rounds], eval_split: Split) -> dict[str, float]:
    """Generated tokens per second, the prompt's pass included."""
    return {"tokens_per_s": 1 / yardstick.median(yardstick.flat(timing["latency"]))}


def quality_ratio(baseline: Figures, result: Figures) -> dict[str, float]:
    """How much the perplexity grew (1 = unchanged)."""
    return {"perplexity": result.perplexity / baseline.perplexity}


def counting_input() -> list[str]:
    return example_inputs()[:1]


def recognises(config: Any) -> bool:
    return is_causal_lm(config)


def hf_loader(source: str, task: str, labels: list[str] | None) -> Callable[[], ModelBundle]:
    """A causal LM loads as it is; models.load_model prompts it for a classification task."""
    return lambda: load_causal_lm(source)


def hf_preprocessor(source: str) -> TextPreprocessor:
    """The tokenizer saved beside a self-contained artifact (a GGUF file): no config to read a context from."""
    return lm_preprocessor(source, config=None)
