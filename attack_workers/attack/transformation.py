"""BERT-Attack word candidates (Li et al. 2020) from a masked LM we pass in, as a TextAttack transformation.

A subclass of TextAttack's ``WordSwapMaskedLM(method="bert-attack")`` that keeps its algorithm
(one unmasked MLM pass over the current text; a word's candidates are the MLM's top-K tokens at
its position) and fixes three defects of textattack 0.3.11:

- ``max_candidates`` is a parameter, default 48 as in the paper (the 0.3.11 recipe uses 8).
- Words split into several sub-tokens: textattack builds the full K^n product of sub-token
  candidates (minutes for one long word) and discards the result of its ``sorted(...)``, so the
  combinations are not ranked. Here, as in the original BERT-Attack, only the top
  ``subword_top`` (4) candidates of the first ``subword_positions`` (12) sub-tokens are combined,
  the first ``subword_keep`` (24) combinations are kept and ranked by the MLM's perplexity of the
  combination, and candidates that are not one whole word are dropped. Such a combination is
  any alphabetic string ("andly", "cotrived", "halftext"), so it must also be a known English word
  (``is_word``, e.g. ``attack_workers.lexicon.relations.is_english_word``); a whole-word MLM token is one
  by construction.
- textattack pads every MLM input to ``max_length`` (512); here inputs are never padded (one text
  per pass), and the MLM pass is reused while the text does not change.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch

from attack_workers.attack.offline import import_textattack
from attack_workers.attack.search import tag_rank
from attack_workers.lexicon.words import is_whole_word

import_textattack()
from textattack.shared import AttackedText  # noqa: E402
from textattack.transformations import WordSwapMaskedLM  # noqa: E402


class BertAttackWordSwap(WordSwapMaskedLM):
    """Candidates for one word = the MLM's top-K whole-word predictions at its position."""

    def __init__(self, masked_lm: Any, tokenizer: Any, max_candidates: int = 48, max_length: int = 512,
                 subword_positions: int = 12, subword_top: int = 4, subword_keep: int = 24,
                 is_word: Callable[[str], bool] | None = None,
                 rewrite: Callable[[AttackedText, int, str], str | None] | None = None) -> None:
        if max_candidates < 1:
            raise ValueError(f"max_candidates={max_candidates}: must be >= 1 (the paper uses 48)")
        device = masked_lm.device
        super().__init__(method="bert-attack", masked_language_model=masked_lm, tokenizer=tokenizer,
                         max_length=max_length, max_candidates=max_candidates)
        # Our own references (the parent's _language_model and _lm_tokenizer are private). The parent moved
        # the model to textattack's global device; keep the caller's.
        self._mlm = masked_lm.to(device)
        self._mlm_tokenizer = tokenizer
        self.subword_positions = subword_positions
        self.subword_top = min(subword_top, max_candidates)
        self.subword_keep = subword_keep
        self.is_word = is_word or (lambda word: True)
        # (text, word index, candidate) -> the candidate as it should be used, or None to drop it: the
        # strict protocol re-inflects candidates to the original's tag here, keeping their rank.
        self.rewrite = rewrite or (lambda text, index, word: word)
        self._special_ids = set(tokenizer.all_special_ids)
        # An uncased MLM proposes "good" for "Good": the same input to an uncased classifier, so skip it.
        self._uncased = tokenizer.tokenize("A") == tokenizer.tokenize("a")
        # BertForMaskedLM = encoder (.bert) + vocabulary head (.cls): run the head only where needed.
        self._split_head = hasattr(masked_lm, "bert") and hasattr(masked_lm, "cls")
        self._cached_input: Any = None
        self._cached_states: torch.Tensor | None = None

    def _encode_input(self, tokenizer_input: str | tuple[str, ...]) -> Any:
        """Token ids of one text (or sentence pair), unpadded; pairs are encoded as BERT pairs."""
        parts = tokenizer_input if isinstance(tokenizer_input, tuple) else (tokenizer_input,)
        return self._mlm_tokenizer(*parts, truncation=True, max_length=self.max_length, return_tensors="pt")

    @torch.inference_mode()
    def _states(self, current_text: AttackedText) -> torch.Tensor:
        """[num_tokens, d] MLM states of ``current_text``: encoder output, or logits when the head can't be split.

        Applying the vocabulary head to every position costs more than the encoder itself
        (d x 30522 per token), and a call needs only the positions of one word: ``_top_ids``
        applies it there. The states are cached while the text does not change.
        """
        key = current_text.tokenizer_input
        if key != self._cached_input:
            enc = self._encode_input(key).to(self._mlm.device)
            if self._split_head:
                states = self._mlm.bert(**enc).last_hidden_state
            else:
                states = self._mlm(**enc).logits
            self._cached_states, self._cached_input = states[0], key
        return self._cached_states

    @torch.inference_mode()
    def _top_ids(self, states: torch.Tensor, positions: list[int]) -> torch.Tensor:
        """[len(positions), K] ids of the MLM's top-K tokens at ``positions``, best first."""
        rows = states[positions]
        logits = self._mlm.cls(rows) if self._split_head else rows
        return torch.topk(logits, self.max_candidates, dim=-1).indices.cpu()

    def _word_positions(self, current_text: AttackedText, index: int, num_tokens: int) -> list[int]:
        """Token positions of word ``index`` in the unmasked encoding (found by masking the word)."""
        masked = current_text.replace_word_at_index(index, self._mlm_tokenizer.mask_token)
        ids = self._encode_input(masked.tokenizer_input)["input_ids"][0].tolist()
        if self._mlm_tokenizer.mask_token_id not in ids:  # the word lies beyond max_length
            return []
        start = ids.index(self._mlm_tokenizer.mask_token_id)
        length = len(self._mlm_tokenizer.encode(current_text.words[index], add_special_tokens=False))
        return list(range(start, min(start + length, num_tokens - 1)))  # never the final [SEP]

    def _as_word(self, token_ids: Iterable[int]) -> str | None:
        """The whole word spelled by ``token_ids``, or None for specials, sub-words and non-words.

        A candidate must be exactly one whole word (``attack_workers.lexicon.words.is_whole_word``, the
        definition the lexicon's vocabulary and the audit share): this rejects "##ing", punctuation,
        numbers, "½", and combinations such as "vivid , ly" or "scooby,," that would not replace one
        word by one word.
        """
        token_ids = list(token_ids)
        if any(t in self._special_ids for t in token_ids):
            return None
        word = self._mlm_tokenizer.convert_tokens_to_string(self._mlm_tokenizer.convert_ids_to_tokens(token_ids))
        word = word.strip()
        return word if is_whole_word(word) else None

    @torch.inference_mode()
    def _ranked_combinations(self, top_ids: torch.Tensor) -> list[str]:
        """Multi-sub-token word: combine the top sub-tokens, rank by MLM perplexity (lowest first)."""
        rows = [ids[:self.subword_top].tolist() for ids in top_ids[:self.subword_positions]]
        combos = torch.tensor(list(itertools.islice(itertools.product(*rows), self.subword_keep)))
        logits = self._mlm(input_ids=combos.to(self._mlm.device)).logits.float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), combos.to(logits.device),
                                                reduction="none")  # [N, n]
        order = torch.argsort(nll.mean(dim=1).exp(), stable=True).tolist()
        words = (self._as_word(combos[j].tolist()) for j in order)
        real = (w for w in words if w is not None and self.is_word(w))
        return list(dict.fromkeys(real))  # two splits can spell one word

    def _replacement_words(self, current_text: AttackedText, index: int) -> list[str]:
        states = self._states(current_text)
        positions = self._word_positions(current_text, index, states.shape[0])
        if not positions:
            return []
        top_ids = self._top_ids(states, positions[:self.subword_positions])
        if len(positions) == 1:
            words = (self._as_word([t]) for t in top_ids[0].tolist())
            return [w for w in words if w is not None]
        return self._ranked_combinations(top_ids)

    def _get_transformations(self, current_text: AttackedText, indices_to_modify: Iterable[int]) -> list[AttackedText]:
        """Each word's candidates best first, tagged with their rank (TextAttack re-sorts them by text)."""
        transformed = []
        for index in indices_to_modify:
            original = self._comparable(current_text.words[index])
            rewritten = (self.rewrite(current_text, index, w) for w in self._replacement_words(current_text, index))
            words = list(dict.fromkeys(w for w in rewritten if w is not None and self._comparable(w) != original
                                       and _allowed_swap(w, original)))
            transformed += [tag_rank(current_text.replace_word_at_index(index, w), rank) for rank, w in enumerate(words)]
        return transformed

    def _comparable(self, word: str) -> str:
        return word.lower() if self._uncased else word

    def extra_repr_keys(self) -> list[str]:
        return [*super().extra_repr_keys(), "subword_positions", "subword_top", "subword_keep"]


NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "non-")
# Words that negate what follows, and the stems TextAttack leaves of "hasn't", "doesn't"...: "has" ->
# "hasn" or "best" -> "not" turns a sentence into its opposite while every word vector stays close.
NEGATIONS = frozenset({"not", "no", "never", "nor", "none", "nothing", "nobody", "neither", "without", "hardly",
                       "barely", "ain", "aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn",
                       "mightn", "mustn", "needn", "shan", "shouldn", "wasn", "weren", "won", "wouldn"})


def _allowed_swap(candidate: str, original: str) -> bool:
    """Swaps no word vector can vet, refused before the constraints see them.

    - Numbers are never replaced and never replace a word ("8/10" -> "11/10", "Kate" -> "2"): a
      number carries a fact, and it has no word vector, so the word filter would pass it unchecked.
    - A word is never replaced by its own negation or back ("predictable" -> "unpredictable",
      "inconsistent" -> "consistent"): derived antonyms that WordNet often does not list and that
      sit close in any distributional vectors.
    - A negation is never inserted or removed (``NEGATIONS``).
    """
    if any(c.isdigit() for c in candidate + original):
        return False
    a, b = candidate.lower(), original.lower()
    if (a in NEGATIONS) != (b in NEGATIONS):
        return False
    return not any(a == p + b or b == p + a for p in NEGATING_PREFIXES)
