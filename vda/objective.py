"""The VDA term shared by every strategy, and the context a strategy's step runs in.

``VDATerm.logits`` sends the clean batch and its k virtual copies through the classifier as one
batch of (k+1)*B sequences via ``inputs_embeds``, so the embedding layer adds position and
segment embeddings as usual and one forward/backward serves all k+1 passes (the method's (k+1)x
cost floor). ``regulariser`` is (1/k) sum_j L_reg(f(E), f(E_hat_j)) (paper Eq. 6, or CE-VDA).

In ``code`` mode the pass is the authors' (RUCAIBox/VDA ``EmbAdapterModel.defense``): the mixture
weights the classifier's own embedding matrix with gradients flowing (``vda.detach_embedding``
cuts them), and the virtual rows skip the classification head's dropout (their virtual logits are
``classifier(pooler(...))`` without ``dropout``; the encoder's own dropout stays on).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator

import torch
import torch.nn.functional as F

from vda.augment import VirtualAugmenter, compose_virtual_inputs
from vda.config import StrategyConfig, VDAConfig
from vda.losses import confidence_penalty, vda_regulariser

MODEL_INPUTS = ("attention_mask", "token_type_ids")


def model_inputs(batch: dict[str, torch.Tensor], repeat: int = 1) -> dict[str, torch.Tensor]:
    """The tensors besides ids/embeddings that the classifier takes (token types only if present)."""
    return {k: batch[k].repeat(repeat, 1) for k in MODEL_INPUTS if k in batch}


def classify_embeds(model: Any, embeds: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits for word embeddings ``embeds`` [n*B, L, d] (n copies of the batch stacked)."""
    repeat = embeds.shape[0] // batch["input_ids"].shape[0]
    return model(inputs_embeds=embeds, **model_inputs(batch, repeat)).logits


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, params: StrategyConfig | None = None) -> torch.Tensor:
    """The clean loss: cross-entropy, with ``params``' label smoothing and confidence penalty when given."""
    if params is None:
        return F.cross_entropy(logits.float(), labels)
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=params.label_smoothing)
    if params.confidence_penalty:
        loss = loss + params.confidence_penalty * confidence_penalty(logits)
    return loss


def head_dropouts(model: Any) -> list[torch.nn.Dropout]:
    """Dropout modules outside the encoder (``model.base_model``): the classification head's."""
    encoder = set(model.base_model.modules())
    return [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m not in encoder]


@contextlib.contextmanager
def head_dropout_on_first_rows(model: Any, rows: int) -> Iterator[None]:
    """Within the block the head's dropout acts on the first ``rows`` sequences of a batch only.

    One batched forward pass then serves the clean rows (with dropout) and the authors' virtual
    rows (without), generically for any Hugging Face classifier whose head has dropout modules.
    """
    def keep_rest(module: torch.nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        return torch.cat([output[:rows], args[0][rows:]]) if module.training else output

    hooks = [m.register_forward_hook(keep_rest) for m in head_dropouts(model)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


class VDATerm:
    """Virtual samples and the regulariser of one configuration."""

    def __init__(self, augmenter: VirtualAugmenter, cfg: VDAConfig, generator: torch.Generator | None = None):
        self.augmenter, self.cfg, self.generator = augmenter, cfg, generator

    def logits(self, model: Any, batch: dict[str, torch.Tensor],
               real: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean [B, C], virtual [k, B, C]) logits from one batched forward pass."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        keys = batch["example_index"].tolist() if "example_index" in batch else None
        matrix = self._mixed_matrix(model)
        virtual = self.augmenter(ids, mask, self.cfg.k, batch.get("token_type_ids"), self.generator, keys, matrix)
        real = model.get_input_embeddings()(ids) if real is None else real  # [B, L, d]
        embeds = torch.cat([real.unsqueeze(0), compose_virtual_inputs(real, virtual, mask)]).flatten(0, 1)
        head = (head_dropout_on_first_rows(model, ids.shape[0]) if self.cfg.mixes_classifier_embedding
                else contextlib.nullcontext())
        with head:
            logits = classify_embeds(model, embeds, batch).view(self.cfg.k + 1, ids.shape[0], -1)
        return logits[0], logits[1:]

    def _mixed_matrix(self, model: Any) -> torch.Tensor | None:
        """The classifier's matrix in code mode (detached when asked), else None: the MLM's own."""
        if not self.cfg.mixes_classifier_embedding:
            return None
        weight = model.get_input_embeddings().weight
        return weight.detach() if self.cfg.detach_embedding else weight

    def regulariser(self, clean: torch.Tensor, virtual: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return vda_regulariser(clean, virtual, labels, self.cfg)

    def weighted(self, clean: torch.Tensor, virtual: torch.Tensor,
                 labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """(lambda * L_reg to add to the loss, its log entry ``{"vda": L_reg}``, unweighted).

        The one place lambda is applied, so no strategy can forget or double it.
        """
        if self.cfg.lam is None:
            raise ValueError("vda.lam is unset (code mode): resolve it for the task with VDAConfig.for_task")
        reg = self.regulariser(clean, virtual, labels)
        return self.cfg.lam * reg, {"vda": reg.item()}


@dataclass
class StepContext:
    """What a strategy's step needs besides the model and batch.

    Strategies call ``backward`` themselves (FreeLB backpropagates once per ascent step) and run
    their forward passes inside ``autocast()``.
    """

    params: StrategyConfig
    vda: VDATerm | None
    backward: Callable[[torch.Tensor], None] = lambda loss: loss.backward()
    autocast: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    generator: torch.Generator | None = None
