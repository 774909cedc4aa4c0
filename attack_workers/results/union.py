"""The worst case per example: robustness under the union of the attacks a checkpoint was evaluated with.

An evaluation with several attacks (``--attacks bert-attack,textfooler,pwws``) stores each attack
under its own attack key; the keys of one evaluation share a ``union_key`` (``protocols.union_key``:
the same protocol, parameters, models, data and example sample, any recipe). For each checkpoint
and union key with two or more attacks, ``union_examples`` makes one row per example, with
``attack = "union"`` and ``attack_key = union_key``, as if one attack had run all of them (the idea
of AutoAttack in vision):

- ``succeeded`` when any attack broke the example, ``skipped`` when the checkpoint got it wrong
  before any attack, else ``failed`` (robust: every attack failed). So Att Acc = failed / n is the
  accuracy under the union, and ``uncertainty.robust_matrix``/``paired_differences`` with
  ``attack_key=union_key`` give its intervals and paired differences unchanged.
- Only over examples every attack finished: an example some attack has no row for yet is left out
  (``pending_examples`` of the union summary row counts it), so a union is never computed from a
  partial set of attacks. With ``skip_broken`` the later attacks record an example an earlier one
  broke as ``spared`` (not attacked), which counts as finished.
- The union's adversarial example is the first success (in the evaluation's attack order, by attack
  name otherwise) that the validity audit does not flag, else the first success: an example is
  flagged in the union only when every attack that broke it was flagged. Its words changed, text
  and audit columns come from that row; its queries and seconds are the sum over the attacks.
"""

from __future__ import annotations

import pandas as pd

from attack_workers.attack.recipes import UNION, attack_rank

SPARED = "spared"  # status of an example skip_broken did not attack: an earlier attack of its union broke it


def union_groups(rows: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """((checkpoint hash, union key), rows) for every group of two or more attack keys."""
    if rows.empty or "union_key" not in rows:
        return []
    out = []
    for key, group in rows.groupby(["checkpoint_hash", "union_key"], sort=False):
        if group["attack_key"].nunique() >= 2:
            out.append((key, group))
    return out


def union_examples(rows: pd.DataFrame) -> pd.DataFrame:
    """One union row per (checkpoint, union key, example) that every attack of the group finished."""
    frames = [_union_of_group(group) for _, group in union_groups(rows)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else rows.iloc[0:0].copy()


def with_union(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` and their union rows (``attack == "union"``, ``attack_key`` = the union key)."""
    union = union_examples(rows)
    return pd.concat([rows, union], ignore_index=True) if len(union) else rows


def _union_of_group(group: pd.DataFrame) -> pd.DataFrame:
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
            chosen = per_example.iloc[0]
            status = "skipped" if (per_example["status"] == "skipped").any() else "failed"
        record = chosen.to_dict()
        record.update(attack=UNION, attack_key=chosen["union_key"], status=status,
                      num_queries=int(per_example["num_queries"].sum()),
                      seconds=float(per_example["seconds"].sum()))
        records.append(record)
    frame = pd.DataFrame(records, columns=list(ranked.columns))
    return frame.drop(columns=["_rank", "_success", "_clean"])
