"""The worst case per example: robustness under the union of the attacks a checkpoint was evaluated with.

An evaluation with several attacks (``--attacks bert-attack,textfooler,pwws``) stores each attack
under its own attack key; the keys of one evaluation share a ``union_key`` (``protocols.union_key``:
the same protocol, parameters, models, data and example sample, any recipe). For each checkpoint
and union key with two or more attacks, ``union_examples`` makes one row per example, with
``attack = "union"`` and ``attack_key`` = ``keys.union_row_key(union key, attacks)``, which
names the set of attacks: unions of two attack sets (one checkpoint attacked by two recipes,
another by three) are two measurements and never pool or pair. It is built as if one attack had
run all of them (the idea of AutoAttack in vision):

- ``succeeded`` when any attack broke the example, ``skipped`` when the checkpoint got it wrong
  before any attack, else ``failed`` (robust: every attack failed). So Att Acc = failed / n is the
  accuracy under the union, and ``uncertainty.robust_matrix``/``paired_differences`` with the
  union row's ``attack_key`` give its intervals and paired differences unchanged.
- Only over examples every attack finished: an example some attack has no row for yet is left out
  (``pending_examples`` of the union summary row counts it, and tables print the row as partial),
  so a union is never computed from a partial set of attacks. With ``skip_broken`` the later
  attacks record an example an earlier one broke as ``spared`` (not attacked), which counts as finished.
- Queries (Q Num): ``num_queries`` is the initial prediction once plus every attack's queries
  beyond its own initial prediction, 1 + sum(q_i - 1) over the attacks that ran (a ``spared`` row
  ran none). Under ``vda-paper``/``strict``, whose Q Num leaves the initial prediction out, a union's
  Q Num is therefore exactly the sum of its attacks' Q Num; under ``textattack`` that sum minus
  (number of attacks - 1). ``seconds`` is the sum over the attacks.
- The adversarial example and its perturbation (Perturb): of a broken example, the first success
  (in the evaluation's attack order, by attack name otherwise) that the validity audit does not
  flag, else the first success: an example is flagged in the union only when every attack that
  broke it was flagged. Of an example every attack failed on, the attempt that changed the most
  words (ties: attack order): the union went that far without a flip. Its words changed, texts
  and audit columns come from that one row.
"""

from __future__ import annotations

import pandas as pd

from attack_workers.results.keys import UNION, attack_rank, union_row_key
from attack_workers.results.outcomes import SPARED


def union_groups(rows: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """((checkpoint hash, union row key), rows) for every checkpoint and union key with two or more attack keys.

    The union row key (``keys.union_row_key``) names the union key and the set of attacks.
    """
    if rows.empty or "union_key" not in rows:
        return []
    out = []
    for (checkpoint, union), group in rows.groupby(["checkpoint_hash", "union_key"], sort=False):
        if group["attack_key"].nunique() >= 2:
            out.append(((checkpoint, union_row_key(union, group["attack"])), group))
    return out


def union_examples(rows: pd.DataFrame) -> pd.DataFrame:
    """One union row per (checkpoint, union row key, example) that every attack of the group finished."""
    frames = [_union_of_group(key, group) for (_, key), group in union_groups(rows)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else rows.iloc[0:0].copy()


def with_union(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` and their union rows (``attack == "union"``, ``attack_key`` = the union row key)."""
    union = union_examples(rows)
    return pd.concat([rows, union], ignore_index=True) if len(union) else rows


def _union_of_group(key: str, group: pd.DataFrame) -> pd.DataFrame:
    keys = group["attack_key"].nunique()
    ranked = group.assign(_rank=group["attack"].map(attack_rank),
                          _success=group["status"] == "succeeded",
                          _clean=~group["audit_flagged"].fillna(False).astype(bool))
    ranked = ranked.sort_values(["example_id", "_rank", "attack"], kind="stable")
    records = []
    for _, per_example in ranked.groupby("example_id", sort=True):
        if per_example["attack_key"].nunique() < keys:  # some attack has not finished it
            continue
        successes = per_example[per_example["_success"]]
        if len(successes):
            clean = successes[successes["_clean"]]
            chosen, status = (clean if len(clean) else successes).iloc[0], "succeeded"
        else:
            status = "skipped" if (per_example["status"] == "skipped").any() else "failed"
            changed = per_example["words_changed"].fillna(0).to_numpy()
            chosen = per_example.iloc[int(changed.argmax())]  # the first of the largest attempts, in attack order
        record = chosen.to_dict()
        record.update(attack=UNION, attack_key=key, status=status,
                      num_queries=union_queries(per_example),
                      seconds=float(per_example["seconds"].sum()))
        records.append(record)
    frame = pd.DataFrame(records, columns=list(ranked.columns))
    return frame.drop(columns=["_rank", "_success", "_clean"])


def union_queries(per_example: pd.DataFrame) -> int:
    """The union's victim queries on one example: the initial prediction once, then each attack's queries
    beyond its own initial prediction (a ``spared`` row, never attacked, counts none)."""
    ran = per_example.loc[per_example["status"] != SPARED, "num_queries"]
    return 1 + int((ran - 1).clip(lower=0).sum())
