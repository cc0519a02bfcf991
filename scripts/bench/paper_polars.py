"""The paper's LastFM-1K preprocessing written with polars (the library the paper used), as the
peer for `encore data ingest --preset paper` in scripts/bench-ingest.sh. It follows the six steps
of the paper (see src/data/presets.toml) and writes the same per-step counts as Encore's
stats.json.

usage: paper_polars.py LOG.tsv OUT.json
"""

import json
import sys

import polars as pl

GAP_S = 1200
MIN_USER_PLAYS = 1000
MIN_TRACK_PLAYS = 7
SESSION_LEN = 10
MIN_USER_SESSIONS = 50


def counts(df: pl.DataFrame, step: str, sessions: bool) -> dict:
    row = df.select(
        users=pl.col("user").n_unique(),
        tracks=pl.col("track").n_unique(),
        sessions=pl.col("session").n_unique() if sessions else pl.lit(None),
        plays=pl.len(),
    ).row(0, named=True)
    return {"step": step, **row}


def main(path: str, out: str) -> None:
    df = pl.read_csv(
        path,
        separator="\t",
        has_header=False,
        quote_char=None,
        new_columns=["user", "ts", "artid", "artname", "traid", "traname"],
        schema_overrides=[pl.String] * 6,
        empty_string_is_null=False,
    )
    # Step 1: tracks without an MBID get a key from artist and track name.
    df = df.select(
        "user",
        pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").dt.epoch("s").alias("ts"),
        pl.when(pl.col("traid") == "")
        .then(pl.col("artname") + "\t" + pl.col("traname"))
        .otherwise(pl.col("traid"))
        .alias("track"),
    )
    steps = [counts(df, "read", False)]
    # Step 2: users with >= 1000 plays, then tracks with >= 7 plays (one pass).
    df = df.filter(pl.len().over("user") >= MIN_USER_PLAYS)
    steps.append(counts(df, "min-user-plays", False))
    df = df.filter(pl.len().over("track") >= MIN_TRACK_PLAYS)
    steps.append(counts(df, "min-track-plays", False))
    # Step 3: sort by (user, time), keeping file order for equal times; new session after > 20 min.
    df = df.sort(["user", "ts"], maintain_order=True)
    new = (pl.col("user") != pl.col("user").shift(1)).fill_null(True) | (
        (pl.col("ts") - pl.col("ts").shift(1)) > GAP_S
    ).fill_null(True)
    df = df.with_columns(session=new.cast(pl.UInt32).cum_sum())
    steps.append(counts(df, "sessions", True))
    # Step 4: first play of each track inside a session.
    df = df.unique(subset=["session", "track"], keep="first", maintain_order=True)
    steps.append(counts(df, "dedupe-in-session", True))
    # Step 5: sessions with >= 10 tracks, cut to the first 10.
    df = df.filter(pl.len().over("session") >= SESSION_LEN)
    df = df.filter(pl.int_range(pl.len()).over("session") < SESSION_LEN)
    steps.append(counts(df, "session-length", True))
    # Step 6: users with >= 50 sessions.
    df = df.filter(pl.col("session").n_unique().over("user") >= MIN_USER_SESSIONS)
    steps.append(counts(df, "min-user-sessions", True))
    with open(out, "w") as f:
        json.dump({"polars": pl.__version__, "steps": steps}, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
