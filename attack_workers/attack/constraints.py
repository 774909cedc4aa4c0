"""Two of TextAttack's pre-transformation constraints, with the loophole each has closed.

- ``StrictInputColumnModification`` (sentence pairs: attack the second sentence only).
  TextAttack's ``InputColumnModification`` allows every word whenever a text's column labels
  differ from the labels it was built with, so a naming slip would quietly attack both
  sentences. This subclass raises instead.
- ``CaseInsensitiveStopwordModification``. TextAttack's ``StopwordModification`` compares
  ``word not in stopwords`` case-sensitively, so a sentence-initial "A", "An" or "Has" is
  swappable ("A well-put-together piece" -> "as well-put-together piece"). Every protocol uses
  this subclass.
"""

from __future__ import annotations

from typing import Any

from attack_workers.attack.offline import import_textattack

import_textattack()
from textattack.constraints.pre_transformation import InputColumnModification, StopwordModification  # noqa: E402


class StrictInputColumnModification(InputColumnModification):
    """Only words outside ``columns_to_ignore`` may change; mismatched column labels are an error."""

    def _get_modifiable_indices(self, current_text: Any) -> set[int]:
        if current_text.column_labels != self.matching_column_labels:
            raise ValueError(f"text columns {current_text.column_labels} do not match the column constraint's "
                             f"{self.matching_column_labels}; build the attack with the task's text_columns")
        return super()._get_modifiable_indices(current_text)


class CaseInsensitiveStopwordModification(StopwordModification):
    """Stop words may not be modified, whatever their case."""

    def __init__(self, stopwords: set[str] | frozenset[str]) -> None:
        super().__init__(stopwords={w.lower() for w in stopwords})

    def _get_modifiable_indices(self, current_text: Any) -> set[int]:
        return {i for i, word in enumerate(current_text.words) if word.lower() not in self.stopwords}
