"""RecBole 1.2.1's SASRec on MovieLens-100K, the peer for the project's own SASRec: trains with
RecBole's Trainer, tests the best-validation checkpoint and writes one JSON object with the test
metrics and the training throughput.

Protocol (RecBole's): no filtering; every user's interactions are stably sorted by (user,
timestamp), ties kept in file order; each prefix of a user's history is one sample (the last
MAX_ITEM_LIST_LENGTH=50 items before one target), and leave-one-out on those samples puts each
user's last target in test, the one before in validation and all earlier ones in training
(sum over users of n_u - 3 training samples). Full ranking over all items, previously seen items
not masked (RecBole masks only its padding item 0 for sequential models). Loss: cross-entropy
over all items, one target per sample.

Timing: only Trainer._train_epoch (the forward/backward/step loop over one epoch, including the
shuffled batching of the training data) is timed; validation, test and checkpointing are not.

Run it with the venv from scripts/bench/requirements-recbole.txt:
    python3 -m venv ~/.cache/encore/bench/venv-recbole
    ~/.cache/encore/bench/venv-recbole/bin/pip install -r scripts/bench/requirements-recbole.txt
    ~/.cache/encore/bench/venv-recbole/bin/python scripts/bench/recbole_sasrec.py \
        --epochs 200 --patience 10 --threads 2 --json out.json

usage: recbole_sasrec.py [--data DIR_OR_FILE] [--epochs N] [--patience N] [--batch N]
                         [--dropout P] [--threads N] [--seed N] [--device cpu|cuda] [--json PATH]
"""

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="ml-100k.inter, or a folder holding it (default: the one fetched "
                   "into $ENCORE_ASSETS/ml-100k, else the copy inside the installed recbole package)")
    p.add_argument("--epochs", type=int, default=200, help="most training epochs (default 200)")
    p.add_argument("--patience", type=int, default=10,
                   help="RecBole's stopping_step: epochs without a better valid NDCG@10 before stopping (default 10)")
    p.add_argument("--batch", type=int, default=256, help="training batch size (default 256)")
    p.add_argument("--dropout", type=float, default=0.2,
                   help="hidden_dropout_prob and attn_dropout_prob (default 0.2)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    p.add_argument("--seed", type=int, default=2020, help="RecBole's seed (default 2020, RecBole's own)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--json", help="also write the result object here")
    return p.parse_args()


def find_inter(arg):
    """The ml-100k.inter file to use."""
    if arg:
        path = os.path.join(arg, "ml-100k.inter") if os.path.isdir(arg) else arg
        if not os.path.isfile(path):
            sys.exit(f"no such file: {path}")
        return os.path.abspath(path)
    assets = os.environ.get("ENCORE_ASSETS") or os.path.join(
        os.environ.get("ENCORE_CACHE") or os.path.expanduser("~/.cache/encore"), "assets")
    hits = sorted(glob.glob(os.path.join(assets, "ml-100k", "**", "ml-100k.inter"), recursive=True))
    if hits:
        return hits[0]
    import recbole

    path = os.path.join(os.path.dirname(recbole.__file__), "dataset_example", "ml-100k", "ml-100k.inter")
    if not os.path.isfile(path):
        sys.exit("ml-100k.inter not found: pass --data")
    return path


def main():
    args = parse_args()
    # Before numpy/torch load: their thread pools (OpenMP, BLAS) size themselves from these.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""

    import numpy as np
    import torch
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    inter = find_inter(args.data)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    class TimedTrainer(Trainer):
        """RecBole's Trainer, timing each training epoch and recording the validation curve."""

        def __init__(self, config, model):
            super().__init__(config, model)
            self.epoch_seconds, self.epoch_losses, self.valid_scores = [], [], []

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            sync()
            t0 = time.perf_counter()
            loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
            sync()
            self.epoch_seconds.append(time.perf_counter() - t0)
            self.epoch_losses.append(float(loss))
            return loss

        def _valid_epoch(self, valid_data, show_progress=False):
            score, result = super()._valid_epoch(valid_data, show_progress)
            self.valid_scores.append(float(score))
            return score, result

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="recbole-sasrec-") as tmp:
        # RecBole reads DATA_PATH/ml-100k/ml-100k.inter (and .user/.item if present: only the
        # .inter is linked) and writes ./log, ./log_tensorboard and checkpoint_dir: all in tmp.
        os.makedirs(os.path.join(tmp, "data", "ml-100k"))
        os.symlink(inter, os.path.join(tmp, "data", "ml-100k", "ml-100k.inter"))
        os.chdir(tmp)
        try:
            cfg = {
                "data_path": os.path.join(tmp, "data"),
                "checkpoint_dir": os.path.join(tmp, "saved"),
                "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
                # no filtering of users, items, values or duplicates; no normalisation
                "user_inter_num_interval": None,
                "item_inter_num_interval": None,
                "val_interval": None,
                "rm_dup_inter": None,
                "filter_inter_by_user_or_item": False,
                "normalize_all": False,
                "normalize_field": None,
                "eval_args": {"split": {"LS": "valid_and_test"}, "group_by": "user",
                              "order": "TO", "mode": "full"},
                "MAX_ITEM_LIST_LENGTH": 50,
                "hidden_size": 64,
                "inner_size": 256,
                "n_layers": 2,
                "n_heads": 2,
                "hidden_dropout_prob": args.dropout,
                "attn_dropout_prob": args.dropout,
                "hidden_act": "gelu",
                "layer_norm_eps": 1e-12,
                "initializer_range": 0.02,
                "loss_type": "CE",
                "train_neg_sample_args": None,
                "learner": "adam",
                "learning_rate": 0.001,
                "weight_decay": 0.0,
                "train_batch_size": args.batch,
                "eval_batch_size": 4096,
                "epochs": args.epochs,
                "eval_step": 1,
                "stopping_step": args.patience,
                "valid_metric": "NDCG@10",
                "metrics": ["Recall", "NDCG", "MRR"],
                "topk": [10, 20],
                "metric_decimal_place": 6,
                "seed": args.seed,
                "reproducibility": True,
                "use_gpu": args.device == "cuda",
                "gpu_id": "0" if args.device == "cuda" else "",
                "worker": 0,
                "show_progress": False,
                "save_dataset": False,
                "save_dataloaders": False,
                "log_wandb": False,
            }
            # RecBole's Config also reads `--key=value` words from sys.argv: hide ours from it.
            argv, sys.argv = sys.argv, sys.argv[:1]
            try:
                config = Config(model="SASRec", dataset="ml-100k", config_dict=cfg)
            finally:
                sys.argv = argv
            if str(config["device"]) != args.device:
                sys.exit(f"asked for {args.device}, RecBole chose {config['device']}")
            init_seed(config["seed"], config["reproducibility"])
            torch.set_num_threads(args.threads)
            init_logger(config)

            dataset = create_dataset(config)
            raw_interactions = dataset.inter_num  # before build() turns rows into prefix samples
            train_data, valid_data, test_data = data_preparation(config, dataset)
            init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
            model = SASRec(config, train_data._dataset).to(config["device"])
            trainer = TimedTrainer(config, model)
            trainer.fit(train_data, valid_data, saved=True, show_progress=False)
            test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
        finally:
            os.chdir(cwd)

    train_samples = train_data._dataset.inter_num
    epochs = len(trainer.epoch_seconds)
    train_s = sum(trainer.epoch_seconds)
    best = max(trainer.valid_scores) if trainer.valid_scores else None
    # RecBole's early stopping keeps a checkpoint whenever the score is >= the best so far.
    best_epoch = max(i for i, s in enumerate(trainer.valid_scores) if s == best) if best is not None else None
    samples_per_s = train_samples * epochs / train_s
    result = {
        "impl": "recbole",
        "model": "SASRec",
        "recbole": recbole.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "seed": args.seed,
        "data": inter,
        "params": {
            "max_len": 50, "hidden": 64, "inner": 256, "layers": 2, "heads": 2,
            "dropout": args.dropout, "loss": "CE", "lr": 0.001, "batch": args.batch,
            "max_epochs": args.epochs, "patience": args.patience, "valid_metric": "NDCG@10",
            "model_parameters": sum(p.numel() for p in model.parameters()),
        },
        # RecBole's counts include its padding id 0; users/items are the real ones.
        "users": dataset.user_num - 1,
        "items": dataset.item_num - 1,
        "interactions": raw_interactions,
        "train_samples_per_epoch": train_samples,
        "valid_cases": valid_data._dataset.inter_num,
        "test_cases": test_data._dataset.inter_num,
        "epochs_trained": epochs,
        "best_epoch": best_epoch,
        "best_valid_ndcg@10": best,
        "train_seconds": train_s,
        "epoch_seconds": trainer.epoch_seconds,
        "batches_per_epoch": len(train_data),
        # RecBole's epoch loss is the sum of the batches' mean cross-entropies; this is their mean.
        "epoch_mean_batch_loss": [l / len(train_data) for l in trainer.epoch_losses],
        "valid_ndcg@10": trainer.valid_scores,
        "samples_per_s": samples_per_s,
        "target_interactions_per_s": samples_per_s,  # one target per RecBole sample
        "test": {k: float(v) for k, v in test.items()},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
