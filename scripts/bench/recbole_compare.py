"""Prints the RecBole-vs-Encore SASRec table from the two result files and writes a summary.

Throughput in two units: training sequences per second (a RecBole sequence is one prefix with
one target; an Encore sequence is a window of up to 50 plays, each one a target) and target
interactions per second, the unit both share.

usage: recbole_compare.py RECBOLE_JSON ENCORE_RESULTS_JSON SUMMARY_JSON
"""

import json
import sys

rb = json.load(open(sys.argv[1]))
en = json.load(open(sys.argv[2]))
m = en["metrics"]
t = en["training"][0]
rows = [
    ("RecBole 1.2.1 (torch %s)" % rb["torch"], rb["test"]["ndcg@10"], rb["test"]["recall@10"],
     rb["test"]["mrr@10"], rb["epochs_trained"], rb["train_seconds"], rb["samples_per_s"],
     rb["target_interactions_per_s"]),
    ("Encore (burn flex)", m["NDCG@10"]["mean"], m["HR@10"]["mean"], m["MRR@10"]["mean"],
     t["epochs"], t["seconds"], t["seq_per_s"], t["targets_per_s"]),
]
print("\nSASRec on MovieLens-100K, leave-one-out, full ranking (%d test users)" % en["protocol"]["test_cases"])
print("| implementation | NDCG@10 | Recall@10 | MRR@10 | epochs | train s | sequences/s | targets/s |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %.4f | %.4f | %.4f | %d | %.1f | %.0f | %.0f |" % r)
ratio = rows[1][7] / rows[0][7]
print("\nEncore / RecBole: NDCG@10 %.3fx, Recall@10 %.3fx, targets per second %.2fx"
      % (rows[1][1] / rows[0][1], rows[1][2] / rows[0][2], ratio))
json.dump({"recbole": rb, "encore": {"metrics": {k: m[k]["mean"] for k in ("NDCG@10", "HR@10", "MRR@10")},
           "training": {k: t[k] for k in ("epochs", "seconds", "seq_per_s", "targets_per_s")}},
           "targets_per_s_ratio": ratio}, open(sys.argv[3], "w"), indent=2)
