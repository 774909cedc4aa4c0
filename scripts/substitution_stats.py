"""How sharp each substitution mode's p' is on real sentences: the numbers behind docs/fine-tuner.md's mode table.

VDA's virtual token is p' @ E. When p' is near-uniform (the literal Eq. 4, the released code), the
virtual token is the mean embedding whatever the sentence says; when it is concentrated on the
input token, VDA is plain fine-tuning. This script measures where each mode sits with the MLM a
run would use, on MR dev sentences (never trained on by the default MLM), one row per mode:

- entropy / log V and entropy in nats (the exp of which is the effective number of substitutes),
- the mass on the input token and on the heaviest token,
- the cosine of the virtual embedding to the input token's embedding and to the mean embedding.

    python scripts/substitution_stats.py --num-sentences 200
"""

from __future__ import annotations

import argparse
import math

import torch

from vda.config import DataConfig, VDAConfig
from vda.data import load_task
from vda.mlm import load_mlm
from vda.substitution import distribution_stats, mix_embeddings, sample_substitution, score_positions

MODES = (("paper", 0.01), ("code", 0.01), ("sharp", 0.0), ("sharp", 1.0))


def mode_stats(logits: torch.Tensor, input_ids: torch.Tensor, embedding: torch.Tensor, mode: str,
               sigma: float, seed: int) -> dict[str, float]:
    """One mode's p' over every position of ``input_ids`` (logits [n, V]), averaged over positions."""
    cfg = VDAConfig(mode=mode, sigma=sigma, noise=sigma > 0)
    generator = torch.Generator().manual_seed(seed)
    sub = sample_substitution(score_positions(logits, input_ids, cfg), cfg, generator)
    stats = distribution_stats(sub, input_ids, embedding.shape[0])
    virtual = mix_embeddings(sub, embedding).float()
    cos = torch.nn.functional.cosine_similarity
    mean = embedding.float().mean(0, keepdim=True)
    return {"entropy_ratio": stats["entropy_ratio"],
            "entropy_nats": stats["entropy_ratio"] * math.log(embedding.shape[0]),
            "input_mass": stats["original_mass"], "max_weight": stats["max_weight"],
            "cos_to_input": float(cos(virtual, embedding[input_ids].float()).mean()),
            "cos_to_mean": float(cos(virtual, mean.expand_as(virtual)).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mlm", default="default", help="'default' (packaged) or a BertForMaskedLM directory")
    parser.add_argument("--num-sentences", type=int, default=200, help="first N MR dev sentences")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    mlm, tokenizer = load_mlm(args.mlm)
    embedding = mlm.get_input_embeddings().weight.detach()
    sentences = [ex.text_a for ex in load_task(DataConfig(dataset="mr")).splits["dev"][:args.num_sentences]]
    rows: dict[tuple[str, float], list[dict[str, float]]] = {m: [] for m in MODES}
    for sentence in sentences:
        batch = tokenizer(sentence, return_tensors="pt", truncation=True, max_length=64)
        ids = batch["input_ids"][0]
        keep = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))  # [CLS]/[SEP] are never substituted
        with torch.inference_mode():
            logits = mlm(**batch).logits[0][keep]
        for mode, sigma in MODES:
            rows[(mode, sigma)].append(mode_stats(logits, ids[keep], embedding, mode, sigma, args.seed))
    print(f"{len(sentences)} MR dev sentences, MLM {args.mlm!r}, vocabulary {embedding.shape[0]}; means over sentences")
    columns = list(next(iter(rows.values()))[0])
    print("| mode | sigma | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for (mode, sigma), stats in rows.items():
        means = [sum(s[c] for s in stats) / len(stats) for c in columns]
        print(f"| `{mode}` | {sigma:g} | " + " | ".join(f"{m:.4g}" for m in means) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
